package qupath.ext.hubseg;

import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.spi.ToolProvider;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Our compile-only declarations of the QuPath API (qupath-extension/compile-api), read with {@code javap}:
 * they declare exactly the members the adapter's compiled classes use, and, given a QuPath installation, each
 * one exists in QuPath's jars with the same owner kind (class or interface), static-ness, parameter and return
 * types (binary descriptor and generic signature) and thrown exceptions. Paths come from scripts/java_test.sh:
 * -Dhubseg.compileApi, -Dhubseg.adapterClasses and -Dhubseg.qupathJars (empty without QuPath).
 */
class CompileApiTest {

    /** One public member as javap prints it. {@code line} is the declaration without the modifiers that do not
     * change how a caller links to it (native, abstract, default, final, synchronized). */
    record Member(String owner, String name, String descriptor, boolean isStatic, String line) {
        String key() {
            return name + descriptor;
        }
    }

    /** One class: interface or class, its direct supertypes and public members. */
    record Type(String name, boolean isInterface, List<String> supertypes, List<Member> members) {
    }

    private static final Pattern HEADER = Pattern.compile(
            "^(?:public |protected |abstract |final |static |sealed |non-sealed )*(class|interface|enum) (\\S+?)(?:<.*?>)?(?: extends (.*?))?(?: implements (.*?))?(?: permits .*)? \\{$");
    private static final Pattern REF = Pattern.compile(
            "= (?:Methodref|InterfaceMethodref|Fieldref)\\s+#\\d+\\.#\\d+\\s+// (?:\"?)([\\w/$]+)(?:\"?)\\.\"?([\\w<>$]+)\"?:(\\S+)");
    private static final Set<String> LINK_IRRELEVANT = Set.of("native", "abstract", "default", "final", "synchronized",
            "strictfp", "transient", "volatile");

    private static String javap(String... args) {
        ToolProvider javap = ToolProvider.findFirst("javap").orElseThrow(() -> new AssertionError("no javap in this JDK"));
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        int status = javap.run(new PrintWriter(out), new PrintWriter(err), args);
        if (status != 0) {
            throw new AssertionError("javap " + String.join(" ", args) + " failed: " + err + out);
        }
        return out.toString();
    }

    /** Parses {@code javap -public -s} output of one class. */
    static Type parse(String text) {
        String[] lines = text.split("\n");
        Type type = null;
        List<Member> members = new ArrayList<>();
        for (int i = 0; i < lines.length; i++) {
            String line = lines[i].strip();
            Matcher header = HEADER.matcher(line);
            if (type == null && header.matches()) {
                List<String> supers = new ArrayList<>();
                for (String group : new String[]{header.group(3), header.group(4)}) {
                    if (group != null) {
                        for (String s : stripGenerics(group).split(",")) {
                            supers.add(s.strip());
                        }
                    }
                }
                type = new Type(header.group(2), header.group(1).equals("interface"), supers, members);
                continue;
            }
            if (type != null && i + 1 < lines.length && lines[i + 1].strip().startsWith("descriptor: ")) {
                String descriptor = lines[i + 1].strip().substring("descriptor: ".length());
                List<String> words = new ArrayList<>(List.of(line.replaceAll(";$", "").split(" ")));
                boolean isStatic = words.contains("static");
                words.removeIf(LINK_IRRELEVANT::contains);
                String declaration = String.join(" ", words);
                String head = declaration.contains("(") ? declaration.substring(0, declaration.indexOf('(')) : declaration;
                String name = head.substring(head.lastIndexOf(' ') + 1);
                if (name.equals(type.name())) {
                    name = "<init>";
                }
                members.add(new Member(type.name(), name, descriptor, isStatic, declaration));
            }
        }
        if (type == null) {
            throw new AssertionError("javap output without a class header:\n" + text);
        }
        return type;
    }

    private static String stripGenerics(String s) {
        StringBuilder out = new StringBuilder();
        int depth = 0;
        for (char c : s.toCharArray()) {
            if (c == '<') {
                depth++;
            } else if (c == '>') {
                depth--;
            } else if (depth == 0) {
                out.append(c);
            }
        }
        return out.toString();
    }

    private static Path dir(String property) {
        String value = System.getProperty(property, "");
        Assumptions.assumeFalse(value.isEmpty(), "-D" + property + " not given; run scripts/java_test.sh");
        return Path.of(value);
    }

    /** The declared classes (by binary name), parsed from the compiled declarations. */
    static Map<String, Type> declarations() throws IOException {
        Path api = dir("hubseg.compileApi");
        Map<String, Type> types = new LinkedHashMap<>();
        try (Stream<Path> files = Files.walk(api)) {
            for (Path f : files.filter(p -> p.toString().endsWith(".class")).sorted().toList()) {
                Type t = parse(javap("-public", "-s", f.toString()));
                types.put(t.name(), t);
            }
        }
        assertTrue(types.size() > 10, "no compiled declarations in " + api);
        return types;
    }

    /** Enum members the compiler writes itself (same in QuPath's enum): not declarations of ours. */
    private static boolean implicit(Type type, Member m) {
        return type.supertypes().stream().anyMatch(s -> s.startsWith("java.lang.Enum"))
                && (m.name().equals("values") || m.name().equals("valueOf"));
    }

    @Test
    void theDeclarationsAreExactlyWhatTheAdapterUses() throws IOException {
        Map<String, Type> declared = declarations();
        Set<String> used = new TreeSet<>();
        Path adapter = dir("hubseg.adapterClasses");
        try (Stream<Path> files = Files.walk(adapter)) {
            for (Path f : files.filter(p -> p.toString().endsWith(".class")).toList()) {
                Matcher ref = REF.matcher(javap("-v", "-p", f.toString()));
                while (ref.find()) {
                    used.add(ref.group(1).replace('/', '.') + "." + ref.group(2) + ref.group(3));
                }
                // methods the adapter implements for QuPath (QuPathExtension) are used by QuPath calling them
                Type own = parse(javap("-public", "-s", f.toString()));
                for (String s : own.supertypes()) {
                    if (declared.containsKey(s)) {
                        own.members().forEach(m -> used.add(s + "." + m.key()));
                    }
                }
            }
        }
        List<String> unused = new ArrayList<>();
        for (Type t : declared.values()) {
            for (Member m : t.members()) {
                if (!implicit(t, m) && !used.contains(t.name() + "." + m.key())) {
                    unused.add(t.name() + "." + m.key());
                }
            }
        }
        assertEquals(List.of(), unused, "declared in compile-api but not used by the adapter: remove them");
    }

    @Test
    void everyDeclarationMatchesTheRealQuPathClasses() throws IOException {
        String jars = System.getProperty("hubseg.qupathJars", "");
        Assumptions.assumeFalse(jars.isEmpty(), "no QuPath installation to compare the declarations with ("
                + System.getProperty("hubseg.qupathMissing", "set QUPATH_HOME") + ")");
        Map<String, Type> real = new LinkedHashMap<>();
        List<String> differences = new ArrayList<>();
        for (Type declared : declarations().values()) {
            Type actual = realType(real, jars, declared.name());
            if (actual.isInterface() != declared.isInterface()) {
                differences.add(declared.name() + ": declared " + kind(declared) + ", QuPath has " + kind(actual));
            }
            for (Member m : declared.members()) {
                if (implicit(declared, m)) {
                    continue;
                }
                Member match = find(real, jars, actual, m.key(), new LinkedHashSet<>());
                if (match == null) {
                    differences.add(declared.name() + "." + m.key() + ": not in QuPath (" + m.line() + ")");
                } else if (match.isStatic() != m.isStatic()) {
                    differences.add(declared.name() + "." + m.key() + ": static " + m.isStatic() + ", QuPath " + match.isStatic());
                } else if (!match.line().equals(m.line())) {
                    differences.add(declared.name() + "." + m.key() + ": declared '" + m.line() + "', QuPath ("
                            + match.owner() + ") '" + match.line() + "'");
                }
            }
        }
        assertEquals(List.of(), differences, "compile-api differs from QuPath's jars");
    }

    private static String kind(Type t) {
        return t.isInterface() ? "interface" : "class";
    }

    private static Type realType(Map<String, Type> cache, String jars, String name) {
        return cache.computeIfAbsent(name, n -> parse(javap("-public", "-s", "-cp", jars, n)));
    }

    /** The member as the JVM resolves it: in the class, else in its superclasses and superinterfaces. */
    private static Member find(Map<String, Type> cache, String jars, Type type, String key, Set<String> seen) {
        if (!seen.add(type.name())) {
            return null;
        }
        for (Member m : type.members()) {
            if (m.key().equals(key)) {
                return m;
            }
        }
        for (String s : type.supertypes()) {
            Member m = find(cache, jars, realType(cache, jars, s), key, seen);
            if (m != null) {
                return m;
            }
        }
        return null;
    }
}
