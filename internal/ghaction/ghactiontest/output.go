package ghactiontest

import (
	"bytes"
	"slices"
	"strings"
	"sync"
)

// Line is one line of a step's output as the runner reads it, in arrival order.
type Line struct {
	Stream string // "stdout" or "stderr"
	Text   string // without its line terminator
}

// lineLog collects the lines of a process's stdout and stderr in the order they arrive. The
// runner reads both streams and feeds every line to the command parser and the log
// (reference/github-runner.md §4), so order across streams matters for "mask before use".
// Like the runner, which reads the pipes concurrently, the order between the two streams is
// only as exact as the arrival of the writes.
type lineLog struct {
	mu    sync.Mutex
	lines []Line
}

// streamWriter is the io.Writer for one stream: it keeps the raw bytes and cuts lines.
type streamWriter struct {
	log     *lineLog
	stream  string
	raw     bytes.Buffer
	partial []byte
}

func (l *lineLog) writer(stream string) *streamWriter {
	return &streamWriter{log: l, stream: stream}
}

// Write records p and every line it completes.
func (w *streamWriter) Write(p []byte) (int, error) {
	w.log.mu.Lock()
	defer w.log.mu.Unlock()
	w.raw.Write(p)
	w.partial = append(w.partial, p...)
	w.cut(false)
	return len(p), nil
}

// close records the last, unterminated line.
func (w *streamWriter) close() {
	w.log.mu.Lock()
	defer w.log.mu.Unlock()
	w.cut(true)
}

// cut moves complete lines out of partial. The runner reads with StreamReader.ReadLine, which
// ends a line at "\n", "\r" or "\r\n"; a "\r" at the end of the buffer waits for the next write,
// which may bring its "\n".
func (w *streamWriter) cut(eof bool) {
	for {
		i := bytes.IndexAny(w.partial, "\r\n")
		if i < 0 || (w.partial[i] == '\r' && i == len(w.partial)-1 && !eof) {
			break
		}
		w.log.lines = append(w.log.lines, Line{Stream: w.stream, Text: string(w.partial[:i])})
		n := i + 1
		if w.partial[i] == '\r' && n < len(w.partial) && w.partial[n] == '\n' {
			n++
		}
		w.partial = w.partial[n:]
	}
	if eof && len(w.partial) > 0 {
		w.log.lines = append(w.log.lines, Line{Stream: w.stream, Text: string(w.partial)})
		w.partial = nil
	}
}

// ReadOutput returns a Stage holding what the runner makes of stdout alone: its Lines,
// Commands, Masks and masked Log. It lets a unit test check what a writer of workflow commands
// (such as ghaction.Action) prints, without running a process.
func ReadOutput(stdout string) *Stage {
	var l lineLog
	w := l.writer("stdout")
	_, _ = w.Write([]byte(stdout))
	w.close()
	s := &Stage{Stdout: stdout}
	s.readLines(l.lines, nil)
	return s
}

// readLines runs every output line through the runner's command processing (§4): commands are
// parsed, ::add-mask:: registers masks for every later line, and the log shows each line with
// the masks registered so far (inherited ones included) replaced by ***, and an ::add-mask::
// line as ::add-mask::***.
func (s *Stage) readLines(lines []Line, inherited []string) {
	s.Lines = lines
	masks := slices.Clone(inherited)
	var log strings.Builder
	for _, l := range lines {
		cmd, ok := ParseCommand(l.Text)
		if ok {
			s.Commands = append(s.Commands, cmd)
		}
		if ok && cmd.Name == "add-mask" {
			vals := maskValues(cmd.Data)
			if vals == nil {
				s.Issues = append(s.Issues, "warning: Can't add secret mask for empty string in ##[add-mask] command.")
			}
			for _, v := range vals {
				if !slices.Contains(s.Masks, v) {
					s.Masks = append(s.Masks, v)
				}
				masks = append(masks, v)
			}
			log.WriteString("::add-mask::***\n")
			continue
		}
		log.WriteString(maskLine(l.Text, masks))
		log.WriteByte('\n')
	}
	s.Log = log.String()
}

// Annotations returns the commands of one kind, "error", "warning", "notice" (or "debug"), in
// output order.
func (s *Stage) Annotations(kind string) []Command {
	var out []Command
	for _, c := range s.Commands {
		if c.Name == strings.ToLower(kind) {
			out = append(out, c)
		}
	}
	return out
}
