package qupath.ext.hubseg.core;

import org.junit.jupiter.api.Assumptions;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * The repository's real Python server ({@code .venv/bin/hubseg serve}; {@code python -m hubseg_server}, the same
 * entry point, if the script is missing) on 127.0.0.1 with a random port, a temporary data directory holding the tiny test models of
 * {@code hubseg.models.testing}, and small generated TIFF slides. Skips (JUnit assumption) when the
 * repository has no {@code .venv}; fails with the server's output when it exists but the server won't start.
 * Public so that the adapter's tests (package {@code qupath.ext.hubseg}, same JVM) share the same server.
 */
public final class TestServer implements AutoCloseable {

    static final String THRESHOLD_MODEL = "threshold-test-v1";
    static final String TINY_MODEL = "tiny-test-v1";
    /** Energy gate cutoff of the threshold model: the palest disk (energy ~0.69) falls below it. */
    static final double GATE_CUTOFF = 0.8;

    private static final Pattern URL = Pattern.compile("https?://\\S+");
    private static TestServer shared;

    public final Path dir;
    public final Path dataDir;
    public final Path slidesDir;
    public final Path slide;
    public final Path bigSlide;
    public final Path uncalibratedSlide;
    public final URI url;
    public final String token;
    private final Process process;
    private final StringBuffer output = new StringBuffer();

    /** One server (no token) shared by the tests of this run, stopped at JVM exit. */
    public static synchronized TestServer shared() {
        if (shared == null) {
            shared = start(null, 256);
            Runtime.getRuntime().addShutdownHook(new Thread(shared::close));
        }
        return shared;
    }

    public static Path repoRoot() {
        String property = System.getProperty("hubseg.repo");
        Path start = property != null ? Paths.get(property) : Paths.get("").toAbsolutePath();
        for (Path p = start.toAbsolutePath(); p != null; p = p.getParent()) {
            if (Files.isRegularFile(p.resolve("pyproject.toml")) && Files.isDirectory(p.resolve("qupath-extension"))) {
                return p;
            }
        }
        throw new IllegalStateException("repository root not found above " + start + "; pass -Dhubseg.repo=DIR");
    }

    static Path python() {
        Path root = repoRoot();
        Path python = root.resolve(".venv/bin/python");
        Assumptions.assumeTrue(Files.isExecutable(python),
                "no Python environment at " + python + " (run scripts/setup.sh); server tests skipped");
        return python;
    }

    static TestServer start(String token, int maxRequestMb) {
        try {
            return new TestServer(token, maxRequestMb);
        } catch (IOException e) {
            throw new IllegalStateException("could not start the hubseg server: " + e.getMessage(), e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(e);
        }
    }

    private TestServer(String token, int maxRequestMb) throws IOException, InterruptedException {
        Path python = python();
        this.token = token;
        dir = Files.createTempDirectory("hubseg-java-test-");
        dataDir = Files.createDirectories(dir.resolve("data"));
        slidesDir = Files.createDirectories(dir.resolve("slides"));
        slide = slidesDir.resolve("slide.tif");
        bigSlide = slidesDir.resolve("big.tif");
        uncalibratedSlide = slidesDir.resolve("uncalibrated.tif");
        prepare(python);

        // `hubseg serve` as a user runs it; `python -m hubseg_server` is the same entry point (hubseg_server.cli)
        Path hubseg = python.resolveSibling("hubseg");
        List<String> command = new ArrayList<>(Files.isExecutable(hubseg)
                ? List.of(hubseg.toString(), "serve") : List.of(python.toString(), "-m", "hubseg_server"));
        command.addAll(List.of("--host", "127.0.0.1", "--port", "0", "--data-dir", dataDir.toString(),
                "--slides-root", slidesDir.toString(), "--device", "cpu", "--torch-threads", "1",
                "--threads", "4", "--max-request-mb", Integer.toString(maxRequestMb)));
        if (token != null) {
            Path tokenFile = dir.resolve("token.txt");
            Files.writeString(tokenFile, token + "\n");
            try { // the server refuses token files other users can read (POSIX only)
                Files.setPosixFilePermissions(tokenFile, java.nio.file.attribute.PosixFilePermissions.fromString("rw-------"));
            } catch (UnsupportedOperationException notPosix) {
                // Windows: no mode bits to set, and the server does not check them there
            }
            command.add("--token-file");
            command.add(tokenFile.toString());
        }
        ProcessBuilder builder = new ProcessBuilder(command).directory(repoRoot().toFile());
        builder.environment().remove("HUBSEG_TOKEN");
        builder.environment().put("HUBSEG_DATA_DIR", dataDir.toString());
        builder.environment().put("OMP_NUM_THREADS", "1");
        builder.redirectErrorStream(true);
        process = builder.start();
        BufferedReader reader = new BufferedReader(new InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8));
        // The server prints "hubseg server listening on http://127.0.0.1:PORT" as its first stdout line;
        // stderr (merged) may come first, so read until a URL appears.
        URI found = null;
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(90);
        String line;
        while (System.nanoTime() < deadline && (line = reader.readLine()) != null) {
            output.append(line).append('\n');
            Matcher m = URL.matcher(line);
            if (line.contains("listening on") && m.find()) {
                found = URI.create(m.group());
                break;
            }
        }
        if (found == null) {
            process.destroyForcibly();
            throw new IllegalStateException("the hubseg server did not print its URL; output:\n" + output);
        }
        url = found;
        Thread drain = new Thread(() -> {
            try {
                String l;
                while ((l = reader.readLine()) != null) {
                    if (output.length() < 200_000) {
                        output.append(l).append('\n');
                    }
                }
            } catch (IOException ignored) {
                // process ended
            }
        }, "hubseg-server-output");
        drain.setDaemon(true);
        drain.start();
    }

    /** Test models (threshold model active, with an energy gate; tiny U-Net for training) and slides. */
    private void prepare(Path python) throws IOException, InterruptedException {
        String script = String.join("\n",
                "import sys, numpy as np, tifffile",
                "from hubseg.models.testing import make_tiny_model, make_threshold_model",
                "data, slides = sys.argv[1], sys.argv[2]",
                "gate = {'cutoff': " + GATE_CUTOFF + ", 'auroc': 0.9, 'true_energy': 1.2, 'false_energy': 0.5}",
                "make_threshold_model(data, energy_gate=gate, activate=True)",
                "make_tiny_model(data)",
                "img = np.full((384, 384, 3), 235, np.uint8)",
                "yy, xx = np.mgrid[:384, :384]",
                "for cx, cy, r, c in [(96, 96, 40, (90, 40, 120)), (288, 110, 36, (150, 70, 160)), (180, 280, 44, (60, 20, 90))]:",
                "    img[(xx - cx) ** 2 + (yy - cy) ** 2 < r * r] = c",
                "um = dict(resolution=(10000, 10000), resolutionunit='CENTIMETER')  # 1 µm/px",
                "tifffile.imwrite(slides + '/slide.tif', img, photometric='rgb', **um)",
                "tifffile.imwrite(slides + '/uncalibrated.tif', img, photometric='rgb')",
                "rng = np.random.default_rng(0)",
                "big = rng.integers(40, 200, size=(2048, 2048, 3), dtype=np.uint8)",
                "tifffile.imwrite(slides + '/big.tif', big, photometric='rgb', tile=(256, 256), **um)");
        Process p = new ProcessBuilder(python.toString(), "-c", script, dataDir.toString(), slidesDir.toString())
                .directory(repoRoot().toFile()).redirectErrorStream(true).start();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        if (!p.waitFor(120, TimeUnit.SECONDS) || p.exitValue() != 0) {
            throw new IllegalStateException("preparing test models/slides failed:\n" + out);
        }
    }

    public HubsegClient client() {
        return new HubsegClient(url, token);
    }

    public String output() {
        return output.toString();
    }

    @Override
    public void close() {
        process.destroy();
        try {
            if (!process.waitFor(10, TimeUnit.SECONDS)) {
                process.destroyForcibly();
            }
        } catch (InterruptedException e) {
            process.destroyForcibly();
            Thread.currentThread().interrupt();
        }
        try (Stream<Path> walk = Files.walk(dir)) {
            walk.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
        } catch (IOException ignored) {
            // temp files; best effort
        }
    }
}
