/*
 * hubseg: export the reviewed labels of every image in the project (Script editor > Run > Run for project).
 * Each label set is written under <project>/hubseg/labels/ and posted to the server; unreviewed proposals
 * inside a reviewed region are marked undecided (training ignores their pixels) unless INCLUDE_PENDING is true.
 */
import qupath.ext.hubseg.Hubseg

boolean INCLUDE_PENDING = false

def project = getProject()
def entry = getProjectEntry()
if (project == null || entry == null) {
    // label sets are saved in the project folder: without a project there is nowhere to put them
    println "hubseg: open a project and run this with Run > Run for project (label sets are saved in the project folder)."
    return
}
def imageData = getCurrentImageData()
def name = entry.getImageName()
try {
    def ids = Hubseg.exportLabels(project, imageData, name, INCLUDE_PENDING)
    println "${name}: label set(s) ${ids}"
} catch (qupath.ext.hubseg.core.HubsegException e) {
    println "${name}: ${e.message}"
}
