package tape

// SetCrashPoint makes f run where a segment starts completing its file,
// until the returned function is called.
func SetCrashPoint(f func(final string)) (reset func()) {
	crashPoint = f
	return func() { crashPoint = nil }
}

// PutSessionForTest writes a session into a directory's manifest.
func PutSessionForTest(t interface{ Fatal(...any) }, dir string, s Session) {
	if err := putSession(dir, s); err != nil {
		t.Fatal(err)
	}
}
