// Checks the android.* stubs against the vendored subset of Android's API signature files
// (android/jvm-test/api/android-api-subset.txt, each line verbatim from AOSP's current.txt): both ways,
// every public or protected constructor, method and field a stub declares is a line of the subset
// (same kind, static-ness, types, name, and constant value where the file gives one), every line of
// the subset is declared by its stub, and each class has the subset's kind (interface, abstract,
// final) and superclass. So the AAR's Kotlin compiles here against the signatures real Android has.
// Exempt, and listed: members marked @Hidden (AOSP @hide), overrides of java.* methods (the API files
// leave them out), and android.content.Context (no member used; its header is not vendored).
package dev.claimlink.androidtest

import dev.claimlink.fake.Hidden
import java.io.File
import java.lang.reflect.Member
import java.lang.reflect.Method
import java.lang.reflect.Modifier
import java.lang.reflect.Type
import java.util.jar.JarFile

object ApiSignatureCheck {
    private val notVendored = emptySet<String>()

    private class ApiClass(val header: String) {
        val members = LinkedHashMap<String, String?>() // canonical signature -> constant value, if given
    }

    private fun canonical(line: String): Pair<String, String?> {
        var s = line.trim().replace(Regex("@[\\w.]+(\\([^)]*\\))?\\s*"), "")
        s = s.substringBefore(';')
        s = s.replace(Regex("\\s+throws .*$"), "")
        var value: String? = null
        if (s.startsWith("field ") && " = " in s) {
            value = s.substringAfter(" = ").trim()
            s = s.substringBefore(" = ")
        }
        val words = s.split(Regex("\\s+")).filter { it !in setOf("public", "protected", "final", "abstract", "default", "synchronized", "native") }
        return words.joinToString(" ").replace(Regex(",\\s*"), ", ") to value
    }

    private fun parse(file: File): Map<String, ApiClass> {
        val classes = LinkedHashMap<String, ApiClass>()
        var pkg = ""
        var current: ApiClass? = null
        for (line in file.readLines()) {
            if (line.startsWith("//") || line.isBlank()) continue
            Regex("^package (\\S+) \\{").find(line)?.let { pkg = it.groupValues[1]; return@let }
            val header = Regex("^  (public|protected) .*?(class|interface) (\\S+)").find(line)
            if (header != null) {
                val binary = "$pkg." + header.groupValues[3].replace('.', '$')
                current = ApiClass(line.trim()).also { classes[binary] = it }
                continue
            }
            if (line.startsWith("    ")) {
                val (sig, value) = canonical(line)
                current?.members?.put(sig, value)
            }
        }
        return classes
    }

    private fun typeName(t: Type): String {
        // The API files name top-level java.lang types without their package (String, Class<T>), and
        // keep it inside type arguments (java.util.List<java.lang.String>).
        return t.typeName.replace('$', '.').replace(Regex("^java\\.lang\\.(?=\\w+(\\[|<|$))"), "")
    }

    private fun overridesJava(m: Method): Boolean {
        val supers = generateSequence(m.declaringClass.superclass) { it.superclass } + m.declaringClass.interfaces.asSequence()
        return supers.any { s ->
            s.name.startsWith("java.") && runCatching { s.getDeclaredMethod(m.name, *m.parameterTypes) }.isSuccess
        }
    }

    private fun visible(m: Member) = Modifier.isPublic(m.modifiers) || Modifier.isProtected(m.modifiers)

    /** The declared API of [c], canonical signature -> static constant value (as the file prints it). */
    private fun declared(c: Class<*>, exempt: MutableList<String>): Map<String, String?> {
        val out = LinkedHashMap<String, String?>()
        val simple = c.name.substringAfterLast('.').replace('$', '.')
        for (k in c.declaredConstructors) {
            if (!visible(k) || k.isSynthetic) continue
            if (k.isAnnotationPresent(Hidden::class.java)) { exempt += "${c.name}.<init> (@hide)"; continue }
            out["ctor $simple(${k.genericParameterTypes.joinToString(", ") { typeName(it) }})"] = null
        }
        for (m in c.declaredMethods) {
            if (!visible(m) || m.isSynthetic || m.isBridge) continue
            if (m.isAnnotationPresent(Hidden::class.java)) { exempt += "${c.name}.${m.name} (@hide)"; continue }
            if (overridesJava(m)) { exempt += "${c.name}.${m.name} (overrides java.*)"; continue }
            val static = if (Modifier.isStatic(m.modifiers)) "static " else ""
            val typeParams = if (m.typeParameters.isEmpty()) "" else m.typeParameters.joinToString(", ", "<", "> ") { it.name }
            out["method $static$typeParams${typeName(m.genericReturnType)} ${m.name}(${m.genericParameterTypes.joinToString(", ") { typeName(it) }})"] = null
        }
        for (f in c.declaredFields) {
            if (!visible(f) || f.isSynthetic) continue
            val static = Modifier.isStatic(f.modifiers)
            val value = if (static && Modifier.isFinal(f.modifiers) && (f.type.isPrimitive || f.type == String::class.java)) {
                f.isAccessible = true
                f.get(null)?.let { if (it is String) "\"$it\"" else it.toString() }
            } else null
            out["field ${if (static) "static " else ""}${typeName(f.genericType)} ${f.name}"] = value
        }
        return out
    }

    private fun kindOk(c: Class<*>, header: String): Boolean {
        val interfaceOk = (" interface " in " $header ") == c.isInterface
        val abstractOk = c.isInterface || ((" abstract " in " $header ") == Modifier.isAbstract(c.modifiers))
        val finalOk = (" final class " in " $header ") == (Modifier.isFinal(c.modifiers) && !c.isInterface)
        val extends = Regex(" extends (\\S+)").find(header)?.groupValues?.get(1)
        val superOk = c.isInterface || extends == null || c.superclass.name == extends
        return interfaceOk && abstractOk && finalOk && superOk
    }

    /** Returns the problems found (empty: the stubs match) and prints what was checked. */
    fun run(subset: File, stubsJar: File): List<String> {
        val api = parse(subset)
        val problems = mutableListOf<String>()
        val exempt = mutableListOf<String>()
        val stubClasses = JarFile(stubsJar).use { jar ->
            jar.entries().asSequence().map { it.name }
                .filter { it.startsWith("android/") && it.endsWith(".class") }
                .map { it.removeSuffix(".class").replace('/', '.') }
                .filterNot { Regex("\\$\\d").containsMatchIn(it) } // lambdas and anonymous classes
                .toList()
        }
        var members = 0
        for (name in stubClasses.sorted()) {
            val c = Class.forName(name)
            if (!Modifier.isPublic(c.modifiers)) continue // a stub's private helper class
            if (name in notVendored) { exempt += "$name (class not vendored)"; continue }
            val apiClass = api[name]
            if (apiClass == null) { problems += "$name: no such class in the API subset"; continue }
            if (!kindOk(c, apiClass.header)) problems += "$name: kind or superclass differs from `${apiClass.header}`"
            val mine = declared(c, exempt)
            for ((sig, value) in mine) {
                members++
                if (sig !in apiClass.members) problems += "$name: `$sig` is not in the API"
                else if (apiClass.members[sig] != null && apiClass.members[sig] != value) problems += "$name: `$sig` = $value, the API says ${apiClass.members[sig]}"
            }
            for (sig in apiClass.members.keys) if (sig !in mine) problems += "$name: the API subset has `$sig`, the stub does not"
        }
        for (name in api.keys) if (name !in stubClasses) problems += "$name: in the API subset, not stubbed"
        println("  api   ${api.size} classes, $members members checked against ${subset.name}; exempt: ${exempt.joinToString("; ")}")
        return problems
    }
}
