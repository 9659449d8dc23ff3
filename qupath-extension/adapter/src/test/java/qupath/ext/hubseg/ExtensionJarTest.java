package qupath.ext.hubseg;

import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

import java.io.DataInputStream;
import java.io.File;
import java.io.IOException;
import java.io.InputStream;
import java.net.URL;
import java.net.URLClassLoader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.ServiceLoader;
import java.util.jar.JarEntry;
import java.util.jar.JarFile;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The jar scripts/build_extension.sh wrote (passed by java_test.sh as -Dhubseg.jar), as QuPath would load it. */
class ExtensionJarTest {

    private static final String SERVICES = "META-INF/services/qupath.lib.gui.extensions.QuPathExtension";

    private static Path jar() {
        String property = System.getProperty("hubseg.jar", "");
        Assumptions.assumeFalse(property.isEmpty(), "no jar given (-Dhubseg.jar); run scripts/java_test.sh");
        Path jar = Path.of(property);
        assertTrue(Files.isRegularFile(jar), jar + " missing");
        return jar;
    }

    @Test
    void holdsOnlyTheExtensionAsJava21ClassesWithItsServicesEntry() throws IOException {
        try (JarFile jar = new JarFile(jar().toFile())) {
            JarEntry services = jar.getJarEntry(SERVICES);
            assertNotNull(services, SERVICES);
            String className;
            try (InputStream in = jar.getInputStream(services)) {
                className = new String(in.readAllBytes(), StandardCharsets.UTF_8).strip();
            }
            assertEquals("qupath.ext.hubseg.HubsegExtension", className);
            assertNotNull(jar.getJarEntry(className.replace('.', '/') + ".class"), "services class not in the jar");
            int classes = 0;
            for (JarEntry entry : Collections.list(jar.entries())) {
                String name = entry.getName();
                for (String provided : List.of("qupath/lib/", "qupath/fx/", "qupath/imagej/", "javafx/",
                        "com/google/gson/", "org/locationtech/", "org/slf4j/", "ij/")) {
                    assertFalse(name.startsWith(provided), "QuPath provides " + name);
                }
                if (name.endsWith(".class")) {
                    classes++;
                    assertTrue(name.startsWith("qupath/ext/hubseg/"), name);
                    try (DataInputStream in = new DataInputStream(jar.getInputStream(entry))) {
                        assertEquals(0xCAFEBABE, in.readInt(), name);
                        in.readUnsignedShort(); // minor
                        assertEquals(65, in.readUnsignedShort(), name + ": not Java 21 bytecode");
                    }
                }
            }
            assertTrue(classes > 20, "only " + classes + " classes");
            assertEquals("io.github.hubseg.qupath", jar.getManifest().getMainAttributes().getValue("Automatic-Module-Name"));
        }
    }

    @Test
    void quPathsServiceLoaderFindsTheExtensionInTheJar() throws Exception {
        Path jar = jar();
        // the jar + QuPath's jars only (not the test class path's own copy of the classes)
        List<URL> urls = new ArrayList<>();
        urls.add(jar.toUri().toURL());
        for (String entry : System.getProperty("java.class.path").split(File.pathSeparator)) {
            if (entry.endsWith(".jar") && !entry.contains("/qupath-extension/build/")) {
                urls.add(Path.of(entry).toUri().toURL());
            }
        }
        assertTrue(urls.size() > 5, "QuPath's jars are not on java.class.path: " + urls);
        try (URLClassLoader loader = new URLClassLoader(urls.toArray(URL[]::new), ClassLoader.getPlatformClassLoader())) {
            Class<?> api = loader.loadClass("qupath.lib.gui.extensions.QuPathExtension");
            List<Object> found = new ArrayList<>();
            ServiceLoader.load(api, loader).forEach(found::add);
            assertEquals(1, found.size());
            Object extension = found.get(0);
            assertEquals(jar.toUri().toURL(), extension.getClass().getProtectionDomain().getCodeSource().getLocation());
            assertEquals("hubseg", api.getMethod("getName").invoke(extension));
            assertEquals("0.6.0", api.getMethod("getQuPathVersion").invoke(extension).toString());
        }
    }
}
