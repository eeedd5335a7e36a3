package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// child is a process pyrebench started from its own executable (the bench
// server or a client worker). Its stdout is read line by line by a goroutine
// the child owns; stop ends the process and waits for that goroutine.
type child struct {
	name   string
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	lines  chan []byte
	done   chan struct{} // closed when stdout reached EOF
	stopMu sync.Once
}

var errChildExited = errors.New("child process exited")

// pinSelf moves every thread of this process to the CPU list cpus
// (taskset -a), so that threads started later inherit it.
func pinSelf(cpus string) error {
	ts, err := exec.LookPath("taskset")
	if err != nil {
		return fmt.Errorf("-pin needs taskset: %w", err)
	}
	out, err := exec.Command(ts, "-a", "-p", "-c", cpus, strconv.Itoa(os.Getpid())).CombinedOutput()
	if err != nil {
		return fmt.Errorf("taskset -a -p -c %s: %v: %s", cpus, err, out)
	}
	return nil
}

// startChildExe runs exe with args, under "taskset -c cpus" when cpus is
// not empty and under "nice -n nice" when nice is not 0 (both exec the
// program, so the PID is the program's). stderr goes to errOut.
func startChildExe(name, exe, cpus string, nice int, args []string, errOut io.Writer) (*child, error) {
	argv := append([]string{exe}, args...)
	if cpus != "" {
		ts, err := exec.LookPath("taskset")
		if err != nil {
			return nil, fmt.Errorf("-pin needs taskset: %w", err)
		}
		argv = append([]string{ts, "-c", cpus}, argv...)
	}
	if nice != 0 {
		nb, err := exec.LookPath("nice")
		if err != nil {
			return nil, fmt.Errorf("-client-nice needs nice: %w", err)
		}
		argv = append([]string{nb, "-n", strconv.Itoa(nice)}, argv...)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stderr = errOut
	cmd.SysProcAttr = childAttr()
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	c := &child{name: name, cmd: cmd, stdin: stdin, lines: make(chan []byte, 64), done: make(chan struct{})}
	go func() {
		defer close(c.done)
		defer close(c.lines)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 64<<20)
		for sc.Scan() {
			c.lines <- append([]byte(nil), sc.Bytes()...)
		}
		_, _ = io.Copy(io.Discard, stdout)
	}()
	return c, nil
}

// pid returns the child's process id as a /proc path element.
func (c *child) pid() string { return strconv.Itoa(c.cmd.Process.Pid) }

// next returns the child's next stdout line.
func (c *child) next(timeout time.Duration) ([]byte, error) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case l, ok := <-c.lines:
		if !ok {
			return nil, fmt.Errorf("%s: %w", c.name, errChildExited)
		}
		return l, nil
	case <-t.C:
		return nil, fmt.Errorf("%s: no answer within %v", c.name, timeout)
	}
}

// send writes a command to a worker; receive reads its answer.
func (c *child) send(cmd command) error {
	b, _ := json.Marshal(cmd)
	_, err := c.stdin.Write(append(b, '\n'))
	return err
}

func (c *child) receive(timeout time.Duration) (workerStat, error) {
	var st workerStat
	l, err := c.next(timeout)
	if err != nil {
		return st, err
	}
	if err := json.Unmarshal(l, &st); err != nil {
		return st, fmt.Errorf("%s: bad answer %.200q: %w", c.name, l, err)
	}
	if st.Ev == "error" {
		return st, fmt.Errorf("%s: %s", c.name, st.Err)
	}
	return st, nil
}

// stop ends the child: it closes stdin, sends sig if not 0, waits up to
// grace for it to exit, then kills it, and reaps it.
func (c *child) stop(sig syscall.Signal, grace time.Duration) {
	c.stopMu.Do(func() {
		_ = c.stdin.Close()
		if sig != 0 {
			_ = c.cmd.Process.Signal(sig)
		}
		drained := make(chan struct{})
		go func() { // drop lines nobody asked for, so the reader can finish
			defer close(drained)
			for range c.lines {
			}
		}()
		t := time.NewTimer(grace)
		defer t.Stop()
		select {
		case <-c.done:
		case <-t.C:
			_ = c.cmd.Process.Kill()
			<-c.done
		}
		<-drained
		_ = c.cmd.Wait()
	})
}
