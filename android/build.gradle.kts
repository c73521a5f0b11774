// The claimlink AAR: the Rust library for three Android ABIs (src/main/jniLibs), the Kotlin binding
// uniffi generates from it (build/generated/uniffi), and the handwritten Kotlin next to the bindings
// (../bindings/kotlin/src: the Flow wrapper). Both generated parts come from build-rust.sh, which the
// tasks below call before every build unless -Pclaimlink.skipRust=true. Not built on the machine this
// was written on (no Android SDK, NDK or Gradle there): see README.md.

import org.jetbrains.kotlin.gradle.dsl.JvmTarget

plugins {
    id("com.android.library") version "8.7.3"
    id("org.jetbrains.kotlin.android") version "2.1.0"
}

group = "dev.claimlink"
version = "0.1.0" // keep in step with the crate's version in ../Cargo.toml

android {
    namespace = "dev.claimlink" // = [bindings.kotlin] package_name in ../uniffi.toml
    compileSdk = 35

    defaultConfig {
        // java.time.Duration (used by the generated binding for Rust's Duration) needs API 26.
        minSdk = 26
        consumerProguardFiles("consumer-rules.pro")
    }

    buildTypes {
        release {
            isMinifyEnabled = false // the app's R8 run applies consumer-rules.pro
        }
    }

    compileOptions {
        sourceCompatibility = JavaVersion.VERSION_17
        targetCompatibility = JavaVersion.VERSION_17
    }

    sourceSets {
        getByName("main") {
            // uniffi's output (dev/claimlink/claimlink.kt), then the handwritten wrapper.
            java.srcDir("build/generated/uniffi")
            java.srcDir("../bindings/kotlin/src")
            // AndroidGattPeripheral (tested on the JVM by jvm-test/run, outside Gradle's source sets).
            java.srcDir("src/main/kotlin")
            // jniLibs: the default src/main/jniLibs, filled by build-rust.sh (cargo ndk).
        }
    }
}

kotlin {
    compilerOptions {
        jvmTarget.set(JvmTarget.JVM_17)
    }
}

dependencies {
    // The generated binding calls the Rust library through JNA; the AAR flavour of JNA carries
    // libjnidispatch.so for the Android ABIs.
    implementation("net.java.dev.jna:jna:5.14.0@aar")
    // Suspend functions and Flow are part of the public API.
    api("org.jetbrains.kotlinx:kotlinx-coroutines-core:1.9.0")
    implementation("org.jetbrains.kotlinx:kotlinx-coroutines-android:1.9.0")
}

// --- The Rust side -------------------------------------------------------------------------------

val buildRust = file("build-rust.sh")
val skipRust = providers.gradleProperty("claimlink.skipRust").map { it.toBoolean() }.getOrElse(false)

// No inputs/outputs are declared on purpose: cargo decides what is stale (a no-op cargo build takes a
// second or two), and Gradle would otherwise skip the task when Rust sources change.
val cargoNdkBuild by tasks.registering(Exec::class) {
    group = "claimlink"
    description = "Builds libclaimlink.so for arm64-v8a, armeabi-v7a and x86_64 into src/main/jniLibs (cargo ndk, release, no btleplug)."
    workingDir = projectDir
    commandLine("bash", buildRust.absolutePath, "--libs")
}

val generateUniffiKotlin by tasks.registering(Exec::class) {
    group = "claimlink"
    description = "Generates the Kotlin binding into build/generated/uniffi from an unstripped host build with the same features."
    workingDir = projectDir
    commandLine("bash", buildRust.absolutePath, "--bindings")
}

if (!skipRust) {
    tasks.named("preBuild") {
        dependsOn(cargoNdkBuild, generateUniffiKotlin)
    }
}
