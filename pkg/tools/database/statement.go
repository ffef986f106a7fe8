package database

import (
	"strings"
)

// Lexical analysis of the query text, by the rules of SQLite's tokenizer
// (tokenize.c): '...', "..." and `...` quote with the quote character
// doubled as the only escape, [...] quotes with no escape, "--" comments run
// to the end of the line and "/*" comments to "*/" or the end of the text,
// where a "/*" with nothing after it is a slash and a star, not a comment. modernc.org/sqlite's StrictPragmas check uses the same rules.
//
// It is used for two things only, neither of which is the enforcement of
// read-only access (that is the engine's, see authorizer.go):
//   - refusing text holding more than one statement before anything is
//     compiled: the driver would otherwise run the statements one after
//     the other;
//   - naming the statement kind in refusals, and refusing kinds that the
//     authorizer never sees (VACUUM).

// statementEnd returns the index of the ';' that ends the first statement,
// or -1 if there is none.
func statementEnd(sql string) int {
	for i := 0; i < len(sql); {
		switch c := sql[i]; {
		case c == ';':
			return i
		case c == '\'' || c == '"' || c == '`':
			i = quotedEnd(sql, i, c)
		case c == '[':
			i = quotedEnd(sql, i, ']')
		case c == '-' && i+1 < len(sql) && sql[i+1] == '-':
			i = lineCommentEnd(sql, i)
		case c == '/' && i+2 < len(sql) && sql[i+1] == '*':
			i = blockCommentEnd(sql, i)
		default:
			i++
		}
	}
	return -1
}

// singleStatement reports whether sql holds at most one statement: after
// the ';' ending the first one only whitespace, semicolons and comments may
// follow. SQLite sees nothing past a NUL byte, but a NUL is refused before
// this is called, so that the text checked is the text compiled.
func singleStatement(sql string) bool {
	end := statementEnd(sql)
	if end < 0 {
		return true
	}
	return onlyTrivia(sql[end+1:])
}

// onlyTrivia reports whether s is whitespace, semicolons and comments.
func onlyTrivia(s string) bool {
	for i := 0; i < len(s); {
		switch c := s[i]; {
		case c == ';' || isSpace(c):
			i++
		case c == '-' && i+1 < len(s) && s[i+1] == '-':
			i = lineCommentEnd(s, i)
		case c == '/' && i+2 < len(s) && s[i+1] == '*':
			i = blockCommentEnd(s, i)
		default:
			return false
		}
	}
	return true
}

// firstKeyword returns the first word of the statement, upper-cased, after
// whitespace and comments ("" if the text starts with anything else).
func firstKeyword(sql string) string {
	i := 0
	for i < len(sql) {
		switch c := sql[i]; {
		case isSpace(c):
			i++
		case c == '-' && i+1 < len(sql) && sql[i+1] == '-':
			i = lineCommentEnd(sql, i)
		case c == '/' && i+2 < len(sql) && sql[i+1] == '*':
			i = blockCommentEnd(sql, i)
		default:
			j := i
			for j < len(sql) && isWordByte(sql[j]) {
				j++
			}
			return strings.ToUpper(sql[i:j])
		}
	}
	return ""
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\f' || c == '\r'
}

func isWordByte(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// quotedEnd returns the index just past the quoted token opening at sql[i]
// and closed by close, or len(sql) if it is unterminated.
func quotedEnd(sql string, i int, close byte) int {
	for j := i + 1; j < len(sql); j++ {
		if sql[j] != close {
			continue
		}
		if close != ']' && j+1 < len(sql) && sql[j+1] == close {
			j++
			continue
		}
		return j + 1
	}
	return len(sql)
}

// lineCommentEnd returns the index just past the "--" comment at sql[i].
func lineCommentEnd(sql string, i int) int {
	if j := strings.IndexByte(sql[i+2:], '\n'); j >= 0 {
		return i + 2 + j + 1
	}
	return len(sql)
}

// blockCommentEnd returns the index just past the "/*" comment at sql[i].
func blockCommentEnd(sql string, i int) int {
	if j := strings.Index(sql[i+2:], "*/"); j >= 0 {
		return i + 2 + j + 2
	}
	return len(sql)
}
