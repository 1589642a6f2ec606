// Package time exposes starlark-go's time module.
//
//	time.now()                                 the current time
//	time.parse_duration(d)                     "1h30m" → duration
//	time.parse_time(x, format=?, location=?)   parse a time string (RFC 3339 by default)
//	time.from_timestamp(sec, nsec=0)           a time from Unix seconds
//	time.is_valid_timezone(loc)                whether loc names a time zone
//	time.time(year=?, month=?, day=?, hour=?, minute=?, second=?, nanosecond=?, location=?)   build a time
//	time.nanosecond time.microsecond time.millisecond time.second time.minute time.hour   duration constants
//
// Times have year, month, day, hour, minute, second, nanosecond, unix,
// unix_nano, format(layout) and in_location(loc); durations have hours,
// minutes, seconds, milliseconds, microseconds, nanoseconds.
package time
