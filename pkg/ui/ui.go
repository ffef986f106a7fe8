// Package ui decides how agentmesh talks to people and to scripts: styled
// tables on a terminal, plain text when piped, JSON on request, colour only
// when stdout is a terminal and NO_COLOR is unset (https://no-color.org).
// Commands write through an IO so tests capture everything without a
// terminal.
package ui

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/charmbracelet/lipgloss"
	"github.com/charmbracelet/lipgloss/table"
	"golang.org/x/term"
)

// Format is an output format.
type Format string

// Output formats. Text is what `table` degrades to when stdout is not a
// terminal: the same rows, without borders or colour.
const (
	Table Format = "table"
	JSON  Format = "json"
	Text  Format = "text"
)

// IO is a command's standard streams and what they are connected to.
type IO struct {
	In  io.Reader
	Out io.Writer
	Err io.Writer
	// InTTY and OutTTY say whether stdin/stdout are terminals.
	InTTY, OutTTY bool
	// Color enables styling (OutTTY and NO_COLOR unset).
	Color bool
	// Width is the terminal's width in columns: tables (format Table,
	// only on a terminal) are fitted to it. 0 means DefaultWidth.
	Width int
}

// DefaultWidth is the width assumed when the terminal's is unknown.
const DefaultWidth = 100

// System returns the process's streams.
func System() *IO {
	outTTY := term.IsTerminal(int(os.Stdout.Fd()))
	_, noColor := os.LookupEnv("NO_COLOR")
	return &IO{
		In: os.Stdin, Out: os.Stdout, Err: os.Stderr,
		InTTY:  term.IsTerminal(int(os.Stdin.Fd())),
		OutTTY: outTTY,
		Color:  outTTY && !noColor,
		Width:  terminalWidth(int(os.Stdout.Fd()), os.Getenv("COLUMNS")),
	}
}

// terminalWidth is the width of the terminal on fd, else $COLUMNS, else
// DefaultWidth.
func terminalWidth(fd int, columns string) int {
	if w, _, err := term.GetSize(fd); err == nil && w > 0 {
		return w
	}
	if w, err := strconv.Atoi(strings.TrimSpace(columns)); err == nil && w > 0 {
		return w
	}
	return DefaultWidth
}

func (o *IO) width() int {
	if o.Width > 0 {
		return o.Width
	}
	return DefaultWidth
}

// ParseFormat resolves --output: "" means table on a terminal and text
// otherwise; "table" also degrades to text when stdout is not a terminal.
func (o *IO) ParseFormat(s string) (Format, error) {
	switch Format(s) {
	case "", Table:
		if o.OutTTY {
			return Table, nil
		}
		return Text, nil
	case JSON, Text:
		return Format(s), nil
	}
	return "", fmt.Errorf("unknown output format %q: want table, text or json", s)
}

// WriteJSON writes v as indented JSON and a newline.
func WriteJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// Field is one labelled value in a record view.
type Field struct {
	Label string
	Value string
	// Attention marks a value the reader should act on.
	Attention bool
}

// Record prints labelled values aligned in two columns; with colour, labels
// are dim and values needing attention stand out.
func (o *IO) Record(title string, fields []Field) {
	width := 0
	for _, f := range fields {
		width = max(width, len(f.Label))
	}
	label := lipgloss.NewStyle().Faint(true)
	warn := lipgloss.NewStyle().Foreground(lipgloss.Color("3")).Bold(true)
	head := lipgloss.NewStyle().Bold(true)
	if title != "" {
		if o.Color {
			title = head.Render(title)
		}
		fmt.Fprintln(o.Out, title)
	}
	for _, f := range fields {
		l := fmt.Sprintf("%-*s", width, f.Label)
		v := f.Value
		if o.Color {
			l = label.Render(l)
			if f.Attention {
				v = warn.Render(v)
			}
		} else if f.Attention {
			v += "  (!)"
		}
		fmt.Fprintf(o.Out, "  %s  %s\n", l, v)
	}
}

// Rows prints a table: bordered and styled in table format, fitted to
// the terminal's width (long values are cut short with "…", free-text
// columns first); aligned columns with every value in full in text format.
// headers may be nil: then no header line is printed.
func (o *IO) Rows(format Format, headers []string, rows [][]string) {
	if format == Table {
		o.table(headers, rows)
		return
	}
	widths := naturalWidths(headers, rows)
	if headers != nil {
		fmt.Fprintln(o.Out, alignedLine(upper(headers), widths))
	}
	for _, r := range rows {
		fmt.Fprintln(o.Out, alignedLine(r, widths))
	}
}

// table draws a bordered table no wider than the terminal.
func (o *IO) table(headers []string, rows [][]string) {
	n := columns(headers, rows)
	if n == 0 {
		return
	}
	width := o.width()
	// Each column has one space of padding either side and one border
	// character; the table has one more border at the right.
	budget := width - 3*n - 1
	if budget < n {
		// Too narrow for borders: aligned columns, each line cut short.
		widths := fitWidths(headers, naturalWidths(headers, rows), width-2*(n-1))
		if headers != nil {
			fmt.Fprintln(o.Out, Truncate(alignedLine(fitCells(upper(headers), widths), widths), width))
		}
		for _, r := range rows {
			fmt.Fprintln(o.Out, Truncate(alignedLine(fitCells(r, widths), widths), width))
		}
		return
	}
	widths := fitWidths(headers, naturalWidths(headers, rows), budget)
	fitted := make([][]string, len(rows))
	for i, r := range rows {
		fitted[i] = fitCells(pad(r, n), widths)
	}
	t := table.New().Rows(fitted...).
		Border(lipgloss.RoundedBorder()).
		StyleFunc(func(row, col int) lipgloss.Style {
			s := lipgloss.NewStyle().Padding(0, 1)
			if row == table.HeaderRow && o.Color {
				s = s.Bold(true)
			}
			return s
		})
	if headers != nil {
		t = t.Headers(fitCells(pad(headers, n), widths)...)
	}
	fmt.Fprintln(o.Out, t.Render())
}

// RowStream prints rows as they arrive (a followed log) in aligned
// columns under one header line: columns keep their widths from one row to
// the next and only widen for a longer value. On a terminal (format Table)
// each line is fitted to the terminal's width like a table; in text format
// values are printed in full.
type RowStream struct {
	o       *IO
	format  Format
	headers []string
	widths  []int
	started bool
}

// StreamRows starts a RowStream; the header line is printed with the first
// rows.
func (o *IO) StreamRows(format Format, headers []string) *RowStream {
	return &RowStream{o: o, format: format, headers: headers}
}

// Rows prints rows under the header (printed first, once).
func (s *RowStream) Rows(rows [][]string) {
	if len(rows) == 0 {
		return
	}
	grown := naturalWidths(s.headers, rows)
	for i, w := range s.widths {
		if i < len(grown) {
			grown[i] = max(grown[i], w)
		}
	}
	s.widths = grown
	widths, fit := s.widths, s.format == Table
	if fit {
		widths = fitWidths(s.headers, s.widths, s.o.width()-2*(len(s.widths)-1))
	}
	line := func(cells []string) {
		if fit {
			fmt.Fprintln(s.o.Out, Truncate(alignedLine(fitCells(cells, widths), widths), s.o.width()))
		} else {
			fmt.Fprintln(s.o.Out, alignedLine(cells, widths))
		}
	}
	if !s.started && s.headers != nil {
		line(upper(s.headers))
	}
	s.started = true
	for _, r := range rows {
		line(r)
	}
}

// columns is the number of columns of a table.
func columns(headers []string, rows [][]string) int {
	n := len(headers)
	for _, r := range rows {
		n = max(n, len(r))
	}
	return n
}

func pad(cells []string, n int) []string {
	if len(cells) >= n {
		return cells
	}
	out := make([]string, n)
	copy(out, cells)
	return out
}

// naturalWidths is the display width of each column's widest value.
func naturalWidths(headers []string, rows [][]string) []int {
	widths := make([]int, columns(headers, rows))
	for i, h := range headers {
		widths[i] = lipgloss.Width(h)
	}
	for _, r := range rows {
		for i, c := range r {
			widths[i] = max(widths[i], lipgloss.Width(c))
		}
	}
	return widths
}

// alignedLine joins cells two spaces apart, each padded to its column's
// display width except the last.
func alignedLine(cells []string, widths []int) string {
	var b strings.Builder
	for i, c := range cells {
		if i > 0 {
			b.WriteString("  ")
		}
		b.WriteString(c)
		if i < len(cells)-1 && i < len(widths) {
			b.WriteString(strings.Repeat(" ", max(0, widths[i]-lipgloss.Width(c))))
		}
	}
	return strings.TrimRight(b.String(), " ")
}

// freeText names the columns of prose (reasons, notes, descriptions,
// targets) that are shortened first when a table is too wide.
var freeText = map[string]bool{
	"reason": true, "note": true, "description": true, "condition": true,
	"flags": true, "target": true, "detail": true, "details": true,
	"message": true, "excerpt": true,
}

// fixed names columns kept whole as long as anything else can give way.
var fixed = map[string]bool{"seq": true, "time": true, "": true}

// fitWidths shrinks column widths so that their sum is at most budget:
// first the free-text columns (down to 12 cells or their header), then
// the others but seq and time (down to their header, at least 4 cells),
// then, when even that is too wide, every column (down to 1 cell). Within
// each step the widest column gives way first.
func fitWidths(headers []string, natural []int, budget int) []int {
	widths := append([]int(nil), natural...)
	excess := -budget
	for _, w := range widths {
		excess += w
	}
	kind := func(i int) string {
		if i < len(headers) {
			return strings.ToLower(headers[i])
		}
		return ""
	}
	headerWidth := func(i int) int {
		if i < len(headers) {
			return lipgloss.Width(headers[i])
		}
		return 0
	}
	steps := []func(i int) (floor int, ok bool){
		func(i int) (int, bool) { return max(12, headerWidth(i)), freeText[kind(i)] },
		func(i int) (int, bool) { return max(4, headerWidth(i)), !fixed[kind(i)] },
		func(i int) (int, bool) { return 1, true },
	}
	for _, step := range steps {
		for excess > 0 {
			widest := -1
			for i, w := range widths {
				floor, ok := step(i)
				if ok && w > floor && (widest < 0 || w > widths[widest]) {
					widest = i
				}
			}
			if widest < 0 {
				break
			}
			widths[widest]--
			excess--
		}
	}
	return widths
}

// fitCells cuts each cell to its column's width.
func fitCells(cells []string, widths []int) []string {
	out := make([]string, len(cells))
	for i, c := range cells {
		out[i] = c
		if i < len(widths) {
			out[i] = Truncate(c, widths[i])
		}
	}
	return out
}

// Truncate shortens s to at most width display cells (not bytes or
// runes: "✓" is one cell, a wide character two), ending it with "…" when
// anything was cut. Each line of a multi-line value is cut on its own.
func Truncate(s string, width int) string {
	if lipgloss.Width(s) <= width {
		return s
	}
	if strings.Contains(s, "\n") {
		lines := strings.Split(s, "\n")
		for i, l := range lines {
			lines[i] = Truncate(l, width)
		}
		return strings.Join(lines, "\n")
	}
	if width <= 0 {
		return ""
	}
	r := []rune(s)
	used, n := 0, 0
	for n < len(r) {
		w := lipgloss.Width(string(r[n]))
		if used+w > width-1 {
			break
		}
		used += w
		n++
	}
	// Per-rune widths can undercount a cluster (an emoji with a variation
	// selector): measure what is kept.
	for n > 0 && lipgloss.Width(string(r[:n])) > width-1 {
		n--
	}
	return strings.TrimRight(string(r[:n]), " ") + "…"
}

func upper(s []string) []string {
	out := make([]string, len(s))
	for i, h := range s {
		out[i] = strings.ToUpper(h)
	}
	return out
}

// Success prints a line with a check mark to stderr (human progress output
// never goes to stdout, which scripts and `serve` keep for data).
func (o *IO) Success(format string, args ...any) {
	mark := "✓"
	if o.Color {
		mark = lipgloss.NewStyle().Foreground(lipgloss.Color("2")).Render(mark)
	}
	fmt.Fprintf(o.Err, "%s %s\n", mark, fmt.Sprintf(format, args...))
}

// Confirm asks a yes/no question on stderr ("QUESTION [y/N] ") and reads
// one line of answer from In: only "y" or "yes" (any case) is yes; an
// empty line, anything else or the end of input is no. Callers ask only
// when InTTY.
func (o *IO) Confirm(question string) bool {
	fmt.Fprintf(o.Err, "%s [y/N] ", question)
	line, err := bufio.NewReader(o.In).ReadString('\n')
	if err != nil && line == "" {
		fmt.Fprintln(o.Err)
	}
	switch strings.ToLower(strings.TrimSpace(line)) {
	case "y", "yes":
		return true
	}
	return false
}

// Hint prints an indented hint to stderr.
func (o *IO) Hint(format string, args ...any) {
	fmt.Fprintf(o.Err, "  %s\n", fmt.Sprintf(format, args...))
}
