package inventory

// SetTestHookAttributed sets the function called after the packages of each location are attributed to their
// layer, until the returned function restores the previous one.
func SetTestHookAttributed(f func()) (restore func()) {
	prev := testHookAttributed
	testHookAttributed = f
	return func() { testHookAttributed = prev }
}
