package tape

// SetCrashPoint makes f run where a segment starts completing its file,
// until the returned function is called.
func SetCrashPoint(f func(final string)) (reset func()) {
	crashPoint = f
	return func() { crashPoint = nil }
}
