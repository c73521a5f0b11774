// Marks a stub member that AOSP has but hides from the SDK (@hide): it is not in the API file, so the
// signature check skips it, and lists it. Apps reach such members by reflection only.
package dev.claimlink.fake;

import java.lang.annotation.ElementType;
import java.lang.annotation.Retention;
import java.lang.annotation.RetentionPolicy;
import java.lang.annotation.Target;

@Retention(RetentionPolicy.RUNTIME)
@Target({ElementType.METHOD, ElementType.CONSTRUCTOR, ElementType.FIELD})
public @interface Hidden {
    /** Where AOSP declares it. */
    String value();
}
