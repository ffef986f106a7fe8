package code

import (
	"os"
	"strconv"
	"syscall"
)

// sysProcAttr puts the child in its own process group (so a kill reaches
// anything it could start) and kills it if the parent dies.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// peakRSS reads the child's peak resident set (VmHWM) from /proc. Peak,
// not current: a spike between two polls still counts.
func peakRSS(pid int) (int64, bool) {
	kb, err := statusKB("/proc/"+strconv.Itoa(pid)+"/status", "VmHWM:")
	if err != nil {
		return 0, false
	}
	return kb << 10, true
}

// rssWatchdog reports whether peakRSS works here.
const rssWatchdog = true

func killTree(p *os.Process) {
	syscall.Kill(-p.Pid, syscall.SIGKILL)
	p.Kill()
}

// maxRSSKB is the child's peak RSS from its rusage (KiB on Linux).
func maxRSSKB(st *os.ProcessState) int64 {
	if ru, ok := st.SysUsage().(*syscall.Rusage); ok {
		return ru.Maxrss
	}
	return 0
}
