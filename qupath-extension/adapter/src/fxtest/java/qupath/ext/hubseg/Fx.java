package qupath.ext.hubseg;

import javafx.application.Platform;
import javafx.geometry.Bounds;
import javafx.geometry.Point2D;
import javafx.scene.Node;
import javafx.scene.Parent;
import javafx.scene.control.Button;
import javafx.scene.control.DialogPane;
import javafx.scene.image.PixelReader;
import javafx.scene.image.WritableImage;
import javafx.scene.input.KeyCode;
import javafx.scene.input.MouseButton;
import javafx.scene.robot.Robot;
import javafx.stage.Window;

import javax.imageio.ImageIO;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.Callable;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.function.Predicate;

/**
 * Drives real JavaFX windows the way a person does, for the dialog tests: JavaFX's own {@link Robot} moves the
 * mouse, clicks and types (under Xvfb in CI; scripts/java_test.sh starts it), everything else runs on the
 * JavaFX thread through {@link #call}. Screenshots are the window's scene as PNG, in {@code -Dhubseg.screenshots}.
 */
final class Fx {

    static final long TIMEOUT_S = 10;
    private static Robot robot;

    private Fx() {
    }

    /** Starts the JavaFX platform once per JVM (it cannot be restarted); windows closing never stops it. */
    static synchronized void start() {
        if (robot != null) {
            return;
        }
        CompletableFuture<Void> started = new CompletableFuture<>();
        try {
            Platform.startup(() -> started.complete(null));
        } catch (IllegalStateException alreadyRunning) {
            started.complete(null);
        }
        join(started);
        Platform.setImplicitExit(false);
        robot = call(Robot::new);
    }

    /** Runs {@code work} on the JavaFX thread and returns its result (also while a dialog waits in showAndWait). */
    static <T> T call(Callable<T> work) {
        CompletableFuture<T> result = new CompletableFuture<>();
        if (Platform.isFxApplicationThread()) {
            try {
                return work.call();
            } catch (Exception e) {
                throw new AssertionError(e);
            }
        }
        Platform.runLater(() -> {
            try {
                result.complete(work.call());
            } catch (Throwable t) {
                result.completeExceptionally(t);
            }
        });
        return join(result);
    }

    static void run(Runnable work) {
        call(() -> {
            work.run();
            return null;
        });
    }

    /** Opens something that blocks (a dialog's showAndWait) on the JavaFX thread; its answer completes later. */
    static <T> CompletableFuture<T> open(Callable<T> showAndWait) {
        CompletableFuture<T> answer = new CompletableFuture<>();
        Platform.runLater(() -> {
            try {
                answer.complete(showAndWait.call());
            } catch (Throwable t) {
                answer.completeExceptionally(t);
            }
        });
        return answer;
    }

    static <T> T join(CompletableFuture<T> future) {
        try {
            return future.get(TIMEOUT_S, TimeUnit.SECONDS);
        } catch (Exception e) {
            throw new AssertionError("JavaFX did not answer in " + TIMEOUT_S + " s: " + e, e);
        }
    }

    /** Waits until a showing window matches (e.g. by title) and has been laid out. */
    static Window window(Predicate<Window> which, String description) {
        long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(TIMEOUT_S);
        while (System.nanoTime() < end) {
            Optional<Window> found = call(() -> Window.getWindows().stream()
                    .filter(w -> w.isShowing() && w.getScene() != null && which.test(w)).findFirst());
            if (found.isPresent()) {
                settle();
                return found.get();
            }
            pause(50);
        }
        throw new AssertionError("no window " + description + " opened in " + TIMEOUT_S + " s; showing: "
                + call(() -> Window.getWindows().stream().filter(Window::isShowing).map(Fx::describe).toList()));
    }

    static Window titled(String title) {
        return window(w -> title.equals(title(w)), "titled '" + title + "'");
    }

    static String title(Window w) {
        return w instanceof javafx.stage.Stage s ? s.getTitle() : "";
    }

    private static String describe(Window w) {
        return w.getClass().getSimpleName() + " '" + title(w) + "'";
    }

    /** Whether a window with this title is still showing. */
    static boolean showing(String title) {
        return call(() -> Window.getWindows().stream().anyMatch(w -> w.isShowing() && title.equals(title(w))));
    }

    /** Waits until no window with this title shows. */
    static void closed(String title) {
        long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(TIMEOUT_S);
        while (showing(title)) {
            if (System.nanoTime() > end) {
                throw new AssertionError("window '" + title + "' still open after " + TIMEOUT_S + " s");
            }
            pause(50);
        }
    }

    /** The nodes of a window's scene matching {@code type} and {@code which}, in scene-graph order. */
    static <N extends Node> List<N> all(Window window, Class<N> type, Predicate<N> which) {
        return call(() -> {
            List<N> found = new ArrayList<>();
            collect(window.getScene().getRoot(), type, which, found);
            return found;
        });
    }

    static <N extends Node> N find(Window window, Class<N> type, Predicate<N> which, String description) {
        List<N> found = all(window, type, which);
        if (found.isEmpty()) {
            throw new AssertionError("no " + type.getSimpleName() + " " + description + " in " + describe(window));
        }
        return found.get(0);
    }

    private static <N extends Node> void collect(Node node, Class<N> type, Predicate<N> which, List<N> into) {
        if (type.isInstance(node) && which.test(type.cast(node))) {
            into.add(type.cast(node));
        }
        if (node instanceof DialogPane pane) {
            for (var buttonType : pane.getButtonTypes()) {
                Node button = pane.lookupButton(buttonType);
                if (button != null && !into.contains(button)) {
                    collect(button, type, which, into);
                }
            }
        }
        if (node instanceof Parent parent) {
            for (Node child : parent.getChildrenUnmodifiable()) {
                collect(child, type, which, into);
            }
        }
    }

    static Button button(Window window, String text) {
        return find(window, Button.class, b -> text.equals(b.getText()), "'" + text + "'");
    }

    /** Moves the mouse onto the middle of {@code node} and clicks it, as a person does. */
    static void click(Node node) {
        run(() -> {
            Bounds b = node.localToScreen(node.getBoundsInLocal());
            if (b == null) {
                throw new AssertionError(node + " is not on screen");
            }
            robot.mouseMove(new Point2D(b.getCenterX(), b.getCenterY()));
            robot.mouseClick(MouseButton.PRIMARY);
        });
        settle();
    }

    /** Presses and releases a key in the focused window (the mouse first moves over {@code window}). */
    static void key(Window window, KeyCode code) {
        run(() -> {
            robot.mouseMove(new Point2D(window.getX() + window.getWidth() / 2, window.getY() + 10));
            window.requestFocus();
        });
        run(() -> robot.keyType(code));
        settle();
    }

    /** Lets queued events and a layout pass run. */
    static void settle() {
        pause(100);
        run(() -> { });
    }

    static void pause(long ms) {
        try {
            Thread.sleep(ms);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new AssertionError(e);
        }
    }

    /** Saves the window's scene as {@code NAME.png} in -Dhubseg.screenshots (default build/screenshots). */
    static Path screenshot(Window window, String name) {
        WritableImage image = call(() -> window.getScene().snapshot(null));
        int w = (int) image.getWidth();
        int h = (int) image.getHeight();
        BufferedImage png = new BufferedImage(w, h, BufferedImage.TYPE_INT_RGB);
        PixelReader pixels = image.getPixelReader();
        for (int y = 0; y < h; y++) {
            for (int x = 0; x < w; x++) {
                png.setRGB(x, y, pixels.getArgb(x, y));
            }
        }
        Path dir = Path.of(System.getProperty("hubseg.screenshots", "build/screenshots"));
        Path file = dir.resolve(name + ".png");
        try {
            Files.createDirectories(dir);
            ImageIO.write(png, "png", file.toFile());
        } catch (IOException e) {
            throw new AssertionError("could not write " + file + ": " + e, e);
        }
        return file;
    }
}
