package httpguard

import (
	"strconv"
	"strings"
)

// accepts reports whether an Accept header admits every one of the media
// types. Media ranges follow RFC 9110 §12.5.1: the most specific range that
// matches a type decides, and q=0 means "not acceptable"; so "*/*" and
// "text/*" admit text/event-stream, "text/*;q=0" refuses it.
//
// An absent header is refused: MCP 2025-11-25 and 2026-07-28 ("Sending
// Messages to the Server" 2, "Listening for Messages from the Server" 2)
// say the client MUST send one listing the types, and a client that does
// not is one this server cannot be sure can read its answer.
func accepts(header []string, types ...string) bool {
	if len(header) == 0 {
		return false
	}
	for _, t := range types {
		if !acceptsOne(header, t) {
			return false
		}
	}
	return true
}

func acceptsOne(header []string, mediaType string) bool {
	major, _, _ := strings.Cut(mediaType, "/")
	best, q := 0, 0.0
	for _, h := range header {
		for r := range strings.SplitSeq(h, ",") {
			rng, params, _ := strings.Cut(r, ";")
			rngMajor, rngMinor, _ := strings.Cut(strings.TrimSpace(rng), "/")
			spec := 0
			switch {
			case strings.EqualFold(strings.TrimSpace(rng), mediaType):
				spec = 3
			case rngMinor == "*" && strings.EqualFold(rngMajor, major):
				spec = 2
			case rngMajor == "*" && rngMinor == "*":
				spec = 1
			}
			if spec <= best {
				continue
			}
			best, q = spec, qValue(params)
		}
	}
	return best > 0 && q > 0
}

// qValue reads the q parameter of a media range (1 when absent or
// malformed: a sender that meant to refuse writes q=0).
func qValue(params string) float64 {
	for p := range strings.SplitSeq(params, ";") {
		k, v, ok := strings.Cut(strings.TrimSpace(p), "=")
		if ok && strings.EqualFold(strings.TrimSpace(k), "q") {
			if f, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil {
				return f
			}
		}
	}
	return 1
}

// isJSON reports whether a Content-Type is application/json, parameters
// (charset) allowed.
func isJSON(contentType string) bool {
	mt, _, _ := strings.Cut(contentType, ";")
	return strings.EqualFold(strings.TrimSpace(mt), "application/json")
}
