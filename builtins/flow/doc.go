// Package flow provides the control-flow builtins: errors, secrets and
// concurrency.
//
//	print(*args, sep=" ")                    print a line (stdout, or a "print" event with --output json)
//	fail(*args, sep=" ")                     stop the current thread with an error
//	log(msg)                                 an informational line in the report (ctx.log does the same)
//	warn(msg, target=None)                   a warning in the report, optionally about one target (ctx.warn)
//	struct(**kwargs)                         an immutable record with the given fields
//	secret(value)                            wrap a string so it shows as <redacted> everywhere; s.replace(old, new) and s.strip() return secrets, s.contains(x) a bool
//	parallel(fn, items, limit=16)            call fn(item) on its own thread per item; results in item order, shaped like attempt's
//	attempt(fn, *args, **kwargs)             call fn; return struct(ok, value, error) instead of failing
//	prompt(question)                         ask the user at the terminal: the answer, or None without a terminal on stdin
//	retry(fn, attempts=3, delay="1s", backoff=2.0, max_delay="1m")   call fn() until it succeeds; the last error after the final attempt
//
// A target whose effect failed makes the run exit 2 even when attempt or
// parallel caught the error. Cancellation (SIGINT, --timeout) and the step
// budget are never caught.
package flow
