package auth

import (
	"errors"
	"net/http"
)

// Error codes of RFC 6750 §3.1.
const (
	CodeInvalidRequest    = "invalid_request"
	CodeInvalidToken      = "invalid_token"
	CodeInsufficientScope = "insufficient_scope"
)

// Error is why a request was refused, with what the HTTP response says
// (RFC 6750 §3). Description is fixed text for the client: it never
// repeats the token or what the token claimed. Err holds the detail, for
// the server's log.
type Error struct {
	// Status is 400 (invalid_request), 401 (no token, invalid_token),
	// 403 (insufficient_scope) or 503 (the authorization server could not
	// be reached to check the token).
	Status      int
	Code        string
	Description string
	// Scope is the scope to ask for (insufficient_scope).
	Scope string
	Err   error
}

func (e *Error) Error() string {
	msg := http.StatusText(e.Status)
	if e.Code != "" {
		msg = e.Code
	}
	if e.Description != "" {
		msg += ": " + e.Description
	}
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

func (e *Error) Unwrap() error { return e.Err }

// AsError returns err as an *Error; anything else is an invalid token.
func AsError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return invalidToken("the access token is not valid", err)
}

// errNoToken is a request without credentials: 401 with a bare challenge
// (RFC 6750 §3.1: no error code when the request lacks authentication).
var errNoToken = &Error{Status: http.StatusUnauthorized, Description: "no bearer token"}

func invalidToken(desc string, err error) *Error {
	return &Error{Status: http.StatusUnauthorized, Code: CodeInvalidToken, Description: desc, Err: err}
}

func invalidRequest(desc string) *Error {
	return &Error{Status: http.StatusBadRequest, Code: CodeInvalidRequest, Description: desc}
}

func insufficientScope(scope string) *Error {
	return &Error{Status: http.StatusForbidden, Code: CodeInsufficientScope, Scope: scope,
		Description: "the access token lacks a scope this request needs"}
}

// unavailable: the token could not be checked (the issuer's keys or its
// introspection endpoint could not be reached). Not the client's fault,
// and not a reason to send it through authorization again.
func unavailable(desc string, err error) *Error {
	return &Error{Status: http.StatusServiceUnavailable, Description: desc, Err: err}
}
