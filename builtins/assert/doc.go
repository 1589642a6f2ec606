// Package assert provides checks for scenario tests and playbook
// preconditions. A failed check fails the thread with a message saying what
// was expected.
//
//	assert.eq(got, want, msg=None)           got == want
//	assert.ne(got, unwanted, msg=None)       got != unwanted
//	assert.true(cond, msg=None)              cond is truthy
//	assert.contains(container, item, msg=None)   item in container (substring for strings)
//	assert.fails(fn, pattern)                fn() fails with an error matching the regexp pattern; returns the message
package assert
