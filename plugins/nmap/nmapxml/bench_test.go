package nmapxml_test

import (
	"bytes"
	"encoding/xml"
	"io"
	"testing"
	"time"

	nmaplib "github.com/Ullaakut/nmap/v3"
	"github.com/sollwert/sollwert/plugins/nmap/nmapxml"
	"github.com/sollwert/sollwert/plugins/nmap/nmapxml/scangen"
)

// benchScan is a synthetic -sV scan of 8,192 hosts, about 5.6 MB.
func benchScan(b *testing.B) []byte {
	b.Helper()
	var buf bytes.Buffer
	if err := scangen.Write(&buf, scangen.Config{Hosts: 8192, Seed: 1}); err != nil {
		b.Fatal(err)
	}
	return buf.Bytes()
}

// BenchmarkRead is this package's reader, host by host.
func BenchmarkRead(b *testing.B) {
	data := benchScan(b)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		r := nmapxml.NewReader(bytes.NewReader(data), nmapxml.Options{})
		n := 0
		for {
			_, err := r.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			n++
		}
		if n == 0 {
			b.Fatal("no hosts")
		}
	}
}

// BenchmarkEncodingXML is what the nmap source did before: encoding/xml's
// token stream, each <host> decoded into the nmap library's struct.
func BenchmarkEncodingXML(b *testing.B) {
	data := benchScan(b)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if n := decodeStd(b, data); n == 0 {
			b.Fatal("no hosts")
		}
	}
}

// BenchmarkReaderVsEncodingXML reads the same scan with both in each
// iteration, so that the ratio comes from one run on a shared machine.
func BenchmarkReaderVsEncodingXML(b *testing.B) {
	data := benchScan(b)
	var mine, std time.Duration
	for b.Loop() {
		start := time.Now()
		r := nmapxml.NewReader(bytes.NewReader(data), nmapxml.Options{})
		var h nmapxml.Host
		for {
			err := r.NextInto(&h)
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
		}
		mid := time.Now()
		decodeStd(b, data)
		mine, std = mine+mid.Sub(start), std+time.Since(mid)
	}
	mb := float64(len(data)) * float64(b.N) / 1e6
	b.ReportMetric(mb/mine.Seconds(), "nmapxml-MB/s")
	b.ReportMetric(mb/std.Seconds(), "encoding/xml-MB/s")
	b.ReportMetric(std.Seconds()/mine.Seconds(), "x-faster")
}

func decodeStd(tb testing.TB, data []byte) int {
	dec := xml.NewDecoder(bytes.NewReader(data))
	n := 0
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return n
		}
		if err != nil {
			tb.Fatal(err)
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "host" {
			var h nmaplib.Host
			if err := dec.DecodeElement(&h, &se); err != nil {
				tb.Fatal(err)
			}
			n++
		}
	}
}
