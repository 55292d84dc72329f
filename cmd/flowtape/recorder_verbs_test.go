package main

// recorderVerbs are the verbs of the recorder build (-tags recorder, see
// commands_recorder.go): TestRecorderBuild holds the build to them, and
// TestDeployManifests the manifests that run its image.
var recorderVerbs = []string{"export", "record", "recover", "reindex", "schema", "version"}
