package store

import (
	"net/url"
	"strings"
)

// redactedPassword replaces a password wherever a URL is shown.
const redactedPassword = "xxxxx"

// RedactURL returns rawURL with any password (in the user info or in a
// password query parameter) replaced by "xxxxx", for logs and errors. A
// string that does not parse as a URL is redacted by hand the same way.
func RedactURL(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return redactUnparsed(rawURL)
	}
	q := u.Query()
	if q.Has("password") {
		q.Set("password", redactedPassword)
		u.RawQuery = q.Encode()
	}
	return u.Redacted()
}

// redactUnparsed blanks the password of "scheme://user:password@host..."
// and every "password=" parameter without relying on url.Parse.
func redactUnparsed(raw string) string {
	if i := strings.Index(raw, "://"); i >= 0 {
		rest := raw[i+3:]
		hostEnd := len(rest)
		if j := strings.IndexAny(rest, "/?#"); j >= 0 {
			hostEnd = j
		}
		if at := strings.LastIndex(rest[:hostEnd], "@"); at >= 0 {
			if colon := strings.Index(rest[:at], ":"); colon >= 0 {
				rest = rest[:colon+1] + redactedPassword + rest[at:]
			}
		}
		raw = raw[:i+3] + rest
	}
	return redactPasswordParam(raw)
}

// redactPasswordParam blanks the value of every "password=" parameter.
func redactPasswordParam(raw string) string {
	const key = "password="
	var b strings.Builder
	for {
		i := strings.Index(raw, key)
		if i < 0 || (i > 0 && !strings.ContainsRune("?&; ", rune(raw[i-1]))) {
			if i < 0 {
				b.WriteString(raw)
				return b.String()
			}
			b.WriteString(raw[:i+len(key)])
			raw = raw[i+len(key):]
			continue
		}
		b.WriteString(raw[:i+len(key)])
		b.WriteString(redactedPassword)
		raw = raw[i+len(key):]
		if end := strings.IndexAny(raw, "&# "); end >= 0 {
			raw = raw[end:]
		} else {
			raw = ""
		}
	}
}

// scrubPassword returns err's text with rawURL's password blanked, for
// driver errors that may quote the connection string.
func scrubPassword(err error, rawURL string) string {
	text := err.Error()
	u, perr := url.Parse(rawURL)
	if perr != nil {
		return redactUnparsed(text)
	}
	if pw, ok := u.User.Password(); ok && pw != "" {
		text = strings.ReplaceAll(text, pw, redactedPassword)
	}
	if pw := u.Query().Get("password"); pw != "" {
		text = strings.ReplaceAll(text, pw, redactedPassword)
	}
	return text
}
