//go:build !unix

package code

import (
	"os"
	"syscall"
)

func sysProcAttr() *syscall.SysProcAttr { return nil }

func peakRSS(int) (int64, bool) { return 0, false }

const rssWatchdog = false

func killTree(p *os.Process) { p.Kill() }

func maxRSSKB(*os.ProcessState) int64 { return 0 }
