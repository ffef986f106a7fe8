//go:build !unix

package filesystem

import "errors"

func makeFIFO(string) error { return errors.New("no FIFOs on this system") }
