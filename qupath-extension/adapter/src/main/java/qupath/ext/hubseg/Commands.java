package qupath.ext.hubseg;

import javafx.application.Platform;
import qupath.ext.hubseg.core.AdaptationSummary;
import qupath.ext.hubseg.core.HubsegClient;
import qupath.ext.hubseg.core.HubsegException;
import qupath.ext.hubseg.core.HubsegObjects;
import qupath.ext.hubseg.core.HubsegSettings;
import qupath.ext.hubseg.core.JobPoller;
import qupath.ext.hubseg.core.JobState;
import qupath.ext.hubseg.core.JobStatus;
import qupath.ext.hubseg.core.ModelInfo;
import qupath.ext.hubseg.core.ReviewQueue;
import qupath.ext.hubseg.core.TrainingRequest;
import qupath.fx.dialogs.Dialogs;
import qupath.lib.gui.QuPathGUI;
import qupath.lib.gui.viewer.OverlayOptions;
import qupath.lib.images.ImageData;
import qupath.lib.objects.PathObject;
import qupath.lib.objects.classes.PathClass;
import qupath.lib.projects.Project;

import java.awt.image.BufferedImage;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;

/**
 * The menu commands. Each one gathers what it needs from QuPath on the JavaFX thread, does the network work in
 * the background ({@link Ui#background}) and applies the result back on the JavaFX thread.
 */
final class Commands {

    private final QuPathGUI qupath;
    private ReviewPanel reviewPanel;
    private ImageData<BufferedImage> reviewed;

    Commands(QuPathGUI qupath) {
        this.qupath = qupath;
    }

    private ImageData<BufferedImage> requireImage() {
        ImageData<BufferedImage> imageData = qupath.getImageData();
        if (imageData == null) {
            throw new HubsegException("Open an image first.");
        }
        return imageData;
    }

    private static HubsegSettings settings() {
        return HubsegPreferences.get().validate();
    }

    // ---- Detect glomeruli -------------------------------------------------------------------------

    void detect() {
        try {
            ImageData<BufferedImage> imageData = requireImage();
            List<PathObject> regions = Detector.selectedRegions(imageData);
            if (regions.isEmpty() && !Dialogs.showConfirmDialog(Ui.TITLE,
                    "No annotation is selected. Detect glomeruli in the whole image?\n"
                            + "(Select one or more annotations to detect only inside them.)")) {
                return;
            }
            HubsegSettings settings = settings();
            Detector detector = new Detector(HubsegClient.fromSettings(settings), settings);
            ProgressWindow progress = new ProgressWindow("hubseg: detecting glomeruli");
            progress.show();
            Ui.background(() -> {
                try {
                    return detector.run(imageData, regions, progress, progress::isCancelled, progress::message);
                } catch (HubsegException e) {
                    if (progress.isCancelled()) {
                        return List.<Detector.RegionResult>of(); // the user asked for it: not an error
                    }
                    throw e;
                } finally {
                    progress.close();
                }
            }, results -> {
                if (results.isEmpty() && progress.isCancelled()) {
                    Dialogs.showInfoNotification(Ui.TITLE, "Detection cancelled.");
                    return;
                }
                int added = Detector.apply(imageData, results);
                int replaced = results.stream().mapToInt(r -> r.replaced().size()).sum();
                Dialogs.showInfoNotification(Ui.TITLE, added + " object(s) detected"
                        + (replaced > 0 ? ", " + replaced + " earlier unreviewed proposal(s) replaced" : "")
                        + ". Next: Extensions > hubseg > Review uncertain objects.");
            });
        } catch (HubsegException e) {
            Ui.showError(e);
        }
    }

    // ---- Review -------------------------------------------------------------------------------------

    void review() {
        try {
            ImageData<BufferedImage> imageData = requireImage();
            if (reviewPanel != null && reviewed == imageData && reviewPanel.isShowing()) {
                reviewPanel.refreshAndFront();
                return;
            }
            if (reviewPanel != null) {
                reviewPanel.close();
            }
            ReviewSession session = new ReviewSession(imageData, HubsegPreferences.get().rejectBehaviour(),
                    hideUncertain());
            reviewed = imageData;
            reviewPanel = ReviewPanel.show(qupath.getStage(), new ReviewPanel.Source() {
                @Override
                public ReviewQueue read() {
                    return session.rebuild(hideUncertain()); // follows a change made in Settings
                }

                @Override
                public void focus(String id) {
                    PathObject p = session.focus(id);
                    if (p == null) {
                        return;
                    }
                    imageData.getHierarchy().getSelectionModel().setSelectedObject(p); // PathObjectSelectionModel
                    if (qupath.getViewer() != null && qupath.getViewer().getImageData() == imageData) {
                        qupath.getViewer().centerROI(p.getROI()); // QuPathViewer.centerROI(ROI)
                    }
                }

                @Override
                public int wantedReferences() {
                    try {
                        return HubsegPreferences.get().references();
                    } catch (HubsegException e) {
                        return HubsegSettings.DEFAULT_REFERENCES; // the commands report the invalid setting
                    }
                }

                @Override
                public List<ReviewPanel.Crop> cardReferences() {
                    return session.cardReferences(); // network: the panel calls it in the background
                }
            });
        } catch (HubsegException e) {
            Ui.showError(e);
        }
    }

    /** "Hide uncertain objects"; an invalid stored setting is reported by the commands: show everything meanwhile. */
    private static boolean hideUncertain() {
        try {
            return HubsegPreferences.get().hideUncertain();
        } catch (HubsegException e) {
            return false;
        }
    }

    // ---- Export corrected labels -----------------------------------------------------------------------

    void export() {
        try {
            ImageData<BufferedImage> imageData = requireImage();
            Project<BufferedImage> project = qupath.getProject();
            LabelExporter.labelsFolder(project); // fails early, with a message, when there is no project
            List<PathObject> regions = LabelExporter.regions(imageData);
            List<LabelExporter.Prepared> prepared = LabelExporter.prepare(imageData, regions, true);
            int pending = prepared.stream().mapToInt(p -> p.summary().pendingIncluded()).sum();
            boolean includePending = true;
            if (pending > 0) {
                includePending = Dialogs.showYesNoDialog(Ui.TITLE, pending + " proposed object(s) in the exported "
                        + "region(s) were not reviewed.\nYes: count them as glomeruli (you checked the region).\n"
                        + "No: mark them undecided (training ignores their pixels).");
                prepared = LabelExporter.prepare(imageData, regions, includePending);
            }
            StringBuilder summary = new StringBuilder();
            prepared.forEach(p -> summary.append(p.summary().describe()).append('\n'));
            if (!Dialogs.showConfirmDialog(Ui.TITLE, "Export these labels to the project and the server?\n\n" + summary)) {
                return;
            }
            String imageName = project.getEntry(imageData) != null ? project.getEntry(imageData).getImageName()
                    : imageData.getServer().getMetadata().getName();
            List<LabelExporter.Prepared> toSend = prepared;
            HubsegClient client = HubsegClient.fromSettings(settings());
            Ui.background(() -> {
                List<String> lines = new ArrayList<>();
                for (LabelExporter.Prepared p : toSend) {
                    // the file first, so nothing depends on the server's disk alone
                    Path file = LabelExporter.write(project, imageName, p.labelSet());
                    String id = LabelExporter.post(client, project, p.labelSet());
                    lines.add("Saved " + file.getFileName() + " (server id " + id + ")");
                }
                return String.join("\n", lines);
            }, text -> Ui.info("Labels exported", text + "\n\nNext: Extensions > hubseg > Train new model."));
        } catch (HubsegException e) {
            Ui.showError(e);
        }
    }

    // ---- Train new model ---------------------------------------------------------------------------------

    void train() {
        try {
            HubsegSettings settings = settings();
            HubsegClient client = HubsegClient.fromSettings(settings);
            Project<BufferedImage> project = qupath.getProject();
            boolean saved = project != null && project.getPath() != null;
            Ui.quick(() -> new Offer(client.models(), client.health().activeModel(),
                    saved ? LabelExporter.projectLabelSetIds(project) : List.of(),
                    saved ? UnreviewedImages.find(project) : List.<UnreviewedImages.Candidate>of()),
                    offer -> TrainDialog.ask(offer.choices()).ifPresent(answer -> startTraining(client, settings,
                            answer, answer.learnFromUnreviewed() ? offer.unreviewed() : List.of())));
        } catch (HubsegException e) {
            Ui.showError(e);
        }
    }

    /** What the Train dialog offers, with the unreviewed images themselves (the dialog only counts them). */
    private record Offer(List<ModelInfo> models, String activeModel, List<String> labelSets,
                         List<UnreviewedImages.Candidate> unreviewed) {
        TrainDialog.Choices choices() {
            int notLocal = (int) unreviewed.stream().filter(c -> c.localPath() == null).count();
            return new TrainDialog.Choices(models, activeModel, labelSets, unreviewed.size(), notLocal);
        }
    }

    private void startTraining(HubsegClient client, HubsegSettings settings, TrainDialog.Answer answer,
                               List<UnreviewedImages.Candidate> unreviewed) {
        TrainingRequest request = answer.request();
        ProgressWindow progress = new ProgressWindow("hubseg: training");
        progress.show();
        Ui.background(() -> {
            try {
                JobStatus job;
                if (unreviewed.isEmpty()) {
                    job = client.startTraining(request);
                } else {
                    // paths or uploaded pixels of the unreviewed images (reading and uploading may take a while)
                    UnreviewedImages.Started started;
                    try {
                        started = UnreviewedImages.startTraining(client, settings, request, unreviewed,
                                progress::message, progress::isCancelled);
                    } catch (HubsegException e) {
                        if (progress.isCancelled()) {
                            return null; // the user asked for it: not an error
                        }
                        throw e;
                    }
                    if (!started.skipped().isEmpty()) {
                        String left = String.join(", ", started.skipped());
                        Platform.runLater(() -> Dialogs.showWarningNotification(Ui.TITLE,
                                "Self-training leaves out: " + left));
                    }
                    job = started.job();
                }
                JobStatus done = client.await(job.id(), progress, progress::isCancelled, Duration.ofSeconds(2));
                return done.state() == JobState.CANCELLED ? done : JobPoller.requireSucceeded(done);
            } finally {
                progress.close();
            }
        }, done -> {
            if (done == null || done.state() == JobState.CANCELLED) {
                Dialogs.showInfoNotification(Ui.TITLE, "Training cancelled; no new model was registered.");
                return;
            }
            String model = done.newModel();
            String calibration = done.calibration() == null ? "" : "\n\n" + done.calibration();
            if (model == null) {
                Ui.info("Training finished", "The server registered no new model; see its terminal output.");
            } else if (request.activate()) {
                Ui.info("Training finished", "New model " + model + " is now the active model." + calibration);
            } else if (Dialogs.showYesNoDialog(Ui.TITLE, "Training finished: new model " + model + "." + calibration
                    + "\n\nMake it the active model for detection?")) {
                Ui.quick(() -> client.activateModel(model), info -> {
                    HubsegPreferences.set(HubsegPreferences.get().withModel(""));
                    Dialogs.showInfoNotification(Ui.TITLE, model + " is now the active model.");
                });
            }
        });
    }

    // ---- Adapt to this project ---------------------------------------------------------------------------

    /** Self-training on the project's images (no labels), then the summary and the offer to activate. */
    void adapt() {
        try {
            HubsegSettings settings = settings();
            HubsegClient client = HubsegClient.fromSettings(settings);
            Project<BufferedImage> project = qupath.getProject();
            if (project == null || project.getPath() == null) {
                throw new HubsegException("Open a QuPath project first (File > Open project): adaptation learns from "
                        + "its images.");
            }
            Ui.quick(() -> new AdaptOffer(client.models(), client.health().activeModel(), UnreviewedImages.all(project)),
                    offer -> AdaptDialog.ask(offer.choices()).ifPresent(answer -> {
                        List<UnreviewedImages.Candidate> chosen = answer.images().stream().map(offer.images()::get).toList();
                        startAdaptation(client, settings, project, answer.baseModel(), chosen);
                    }));
        } catch (HubsegException e) {
            Ui.showError(e);
        }
    }

    private record AdaptOffer(List<ModelInfo> models, String activeModel, List<UnreviewedImages.Candidate> images) {
        AdaptDialog.Choices choices() {
            int notLocal = (int) images.stream().filter(c -> c.localPath() == null).count();
            return new AdaptDialog.Choices(models, activeModel, images.stream().map(UnreviewedImages.Candidate::name)
                    .toList(), notLocal);
        }
    }

    private void startAdaptation(HubsegClient client, HubsegSettings settings, Project<BufferedImage> project,
                                 String baseModel, List<UnreviewedImages.Candidate> images) {
        // no label sets: self-training alone, with the server's own epoch budget
        TrainingRequest request = new TrainingRequest(baseModel, List.of(), TrainingRequest.params(null, null, null, null),
                false);
        ProgressWindow progress = new ProgressWindow("hubseg: adapting to this project", true);
        progress.show();
        Ui.background(() -> {
            try {
                UnreviewedImages.Started started = UnreviewedImages.startTraining(client, settings, request, images,
                        progress::message, progress::isCancelled);
                JobStatus done = client.await(started.job().id(), progress, progress::isCancelled, Duration.ofSeconds(2));
                if (done.state() == JobState.CANCELLED) {
                    return null;
                }
                JobPoller.requireSucceeded(done);
                return done.newModel() == null ? null : AdaptationSummary.of(client.model(done.newModel()));
            } catch (HubsegException e) {
                if (progress.isCancelled()) {
                    return null; // the user asked for it: not an error
                }
                throw e;
            } finally {
                progress.close();
            }
        }, summary -> {
            if (summary == null) {
                Dialogs.showInfoNotification(Ui.TITLE, "Adaptation cancelled; no new model was registered.");
            } else if (AdaptDialog.summary(summary)) {
                Ui.quick(() -> client.activateModel(summary.model()), info -> {
                    HubsegPreferences.set(HubsegPreferences.get().withModel("")); // detect with the new active model
                    Ui.background(() -> Hubseg.detectProject(project), counts -> Ui.info("Detection finished with "
                            + summary.model(), counts.size() + " image(s) detected again.\n"
                            + "Next: Extensions > hubseg > Review uncertain objects."));
                });
            }
        });
    }

    // ---- Settings and status ----------------------------------------------------------------------------

    void settingsDialog() {
        HubsegSettings current;
        try {
            current = HubsegPreferences.get();
        } catch (HubsegException e) {
            Ui.showError(e);
            current = HubsegSettings.defaults(); // stored values are invalid: start from the defaults to fix them
        }
        boolean hidden = current.hideUncertain();
        SettingsDialog.ask(current).ifPresent(chosen -> {
            HubsegPreferences.set(chosen);
            // only a change is applied, so a class the user hid or showed in QuPath's own class list stays so
            if (chosen.hideUncertain() != hidden) {
                applyHideUncertain(qupath, chosen.hideUncertain());
            }
        });
    }

    void status() {
        try {
            Ui.serverStatus(HubsegClient.fromSettings(settings()));
        } catch (HubsegException e) {
            Ui.showError(e);
        }
    }

    /**
     * Hides (or shows again) class {@code Glomerulus (uncertain)} in every viewer; display only, no object is
     * touched. Uses QuPath's global overlay options, {@code QuPathGUI.getOverlayOptions()}, and
     * {@code qupath.lib.gui.viewer.OverlayOptions.setPathClassHidden(PathClass, boolean)} (qupath-gui-fx, QuPath 0.6
     * and 0.7). Since 0.6 that class set is read through {@code OverlayOptions.ClassVisibilityMode}: in the default
     * {@code HIDE_SELECTED} it lists hidden classes; in {@code SHOW_SELECTED} (the user chose "hide by default") it
     * lists shown classes, so hiding there means taking the class out and showing is left to the user's list.
     * The hidden-class set is not persistent in QuPath, so the extension applies the setting again at start-up.
     */
    static void applyHideUncertain(QuPathGUI qupath, boolean hide) {
        OverlayOptions options = qupath == null ? null : qupath.getOverlayOptions();
        if (options == null) {
            return;
        }
        Runnable apply = () -> {
            PathClass uncertain = PathClass.fromString(HubsegObjects.CLASS_UNCERTAIN);
            if (options.getSelectedClassVisibilityMode() == OverlayOptions.ClassVisibilityMode.SHOW_SELECTED) {
                if (hide) {
                    options.selectedClassesProperty().remove(uncertain);
                }
            } else {
                options.setPathClassHidden(uncertain, hide);
            }
        };
        if (Platform.isFxApplicationThread()) {
            apply.run();
        } else {
            Platform.runLater(apply); // overlay options drive viewer repaints: change them on the FX thread
        }
    }
}
