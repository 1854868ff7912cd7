package loadgen

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// clockTicks is the unit of utime and stime in /proc/<pid>/stat: USER_HZ,
// which Linux fixes at 100 for everything it exposes to user space.
const clockTicks = 100

// ProcStats is what the kernel reports about a process's resource use.
type ProcStats struct {
	// CPU is user plus system time since the process started.
	CPU time.Duration
	// RSS is the resident set size now, in bytes.
	RSS int64
	// PeakRSS is the highest resident set size so far (VmHWM), in bytes.
	PeakRSS int64
}

// ReadProcStats reads /proc/<pid>/stat and /proc/<pid>/status.
func ReadProcStats(pid int) (ProcStats, error) {
	var s ProcStats
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return s, fmt.Errorf("process stats: %w", err)
	}
	s.CPU, err = parseStatCPU(string(stat))
	if err != nil {
		return s, fmt.Errorf("process %d: %w", pid, err)
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return s, fmt.Errorf("process stats: %w", err)
	}
	if s.RSS, err = statusKiB(string(status), "VmRSS:"); err != nil {
		return s, fmt.Errorf("process %d: %w", pid, err)
	}
	if s.PeakRSS, err = statusKiB(string(status), "VmHWM:"); err != nil {
		return s, fmt.Errorf("process %d: %w", pid, err)
	}
	return s, nil
}

// parseStatCPU returns utime+stime from the text of /proc/<pid>/stat. The
// command name (field 2) may hold spaces and parentheses, so fields are
// counted from the last ')'.
func parseStatCPU(stat string) (time.Duration, error) {
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, errors.New("malformed /proc stat: no command name")
	}
	f := strings.Fields(stat[i+1:])
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(f) < 13 {
		return 0, errors.New("malformed /proc stat: too few fields")
	}
	var ticks int64
	for _, s := range f[11:13] {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("malformed /proc stat: %w", err)
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / clockTicks, nil
}

// statusKiB returns the value of a "Name:  123 kB" line of /proc/<pid>/status in bytes.
func statusKiB(status, name string) (int64, error) {
	for line := range strings.Lines(status) {
		rest, ok := strings.CutPrefix(line, name)
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("malformed %s line %q", name, strings.TrimSpace(line))
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("malformed %s line: %w", name, err)
		}
		return n << 10, nil
	}
	return 0, fmt.Errorf("no %s line", name)
}

// Process is a child process that serves MCP at URL.
type Process struct {
	// URL is the endpoint the process announced.
	URL  string
	cmd  *exec.Cmd
	done chan struct{}
	err  error // Wait's result, set before done closes
}

// Pid is the child's process id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// StartProcess starts cmd and waits up to timeout for it to log a JSON
// line with a "url" attribute (as `warden serve` and the benchmark
// upstream do when they accept connections). The child's output is copied
// to logOut (nil: discarded).
func StartProcess(ctx context.Context, cmd *exec.Cmd, timeout time.Duration, logOut io.Writer) (*Process, error) {
	if logOut == nil {
		logOut = io.Discard
	}
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("starting %s: %w", cmd.Path, err)
	}
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Start(); err != nil {
		r.Close()
		w.Close()
		return nil, fmt.Errorf("starting %s: %w", cmd.Path, err)
	}
	w.Close() // the child holds its own copy
	p := &Process{cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	urls := make(chan string, 1)
	go func() {
		defer r.Close()
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		announced := false
		for sc.Scan() {
			line := sc.Bytes()
			fmt.Fprintf(logOut, "%s\n", line)
			if announced {
				continue
			}
			var msg struct {
				URL string `json:"url"`
			}
			if json.Unmarshal(line, &msg) == nil && strings.HasPrefix(msg.URL, "http://") {
				announced = true
				urls <- msg.URL
			}
		}
	}()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case p.URL = <-urls:
		return p, nil
	case <-p.done:
		return nil, fmt.Errorf("%s exited before serving: %v", cmd.Path, p.err)
	case <-timer.C:
		err = fmt.Errorf("%s did not announce its URL within %s", cmd.Path, timeout)
	case <-ctx.Done():
		err = fmt.Errorf("starting %s: %w", cmd.Path, ctx.Err())
	}
	_ = p.Stop(time.Second)
	return nil, err
}

// Stats reads the child's resource use.
func (p *Process) Stats() (ProcStats, error) { return ReadProcStats(p.Pid()) }

// Stop asks the child to shut down (SIGTERM) and kills it if it has not
// exited within grace.
func (p *Process) Stop(grace time.Duration) error {
	select {
	case <-p.done:
		return nil
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	timer := time.NewTimer(grace)
	defer timer.Stop()
	select {
	case <-p.done:
		return nil
	case <-timer.C:
		_ = p.cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("%s did not stop within %s; killed", p.cmd.Path, grace)
	}
}
