/*
 * hubseg: detect glomeruli in every image of the open QuPath project.
 *
 * Run from Automate > Script editor with a project open (needs the hubseg extension installed and
 * `hubseg serve` running; the server URL/token come from Extensions > hubseg > Settings).
 * In each image, detection runs inside the annotations detection ran in before, or in the whole
 * image the first time; earlier proposals nobody reviewed or edited are replaced, reviewed ones are kept.
 * Each image is saved back to the project.
 */
import qupath.ext.hubseg.Hubseg

def project = getProject()
if (project == null) {
    println "Open a project first."
    return
}
println Hubseg.status()
def counts = Hubseg.detectProject(project)
counts.each { name, n ->
    println(n < 0 ? "${name}: failed (see the log)" : "${name}: ${n} objects")
}
