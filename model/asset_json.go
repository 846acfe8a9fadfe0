package model

import (
	"encoding/json"
	"slices"
	"strconv"
	"time"

	"github.com/sollwert/sollwert/sdk"
)

// AppendJSON appends a as encoding/json would encode it, byte for byte
// (TestAssetJSONMatchesEncodingJSON holds the two together), without
// reflection: the API lists a hundred thousand assets in one answer, and
// encoding them is most of its cost.
func (a *Asset) AppendJSON(b []byte) []byte {
	b = append(b, `{"id":`...)
	b = appendJSONString(b, a.ID)
	b = append(b, `,"tenant":`...)
	b = appendJSONString(b, a.Tenant)
	b = append(b, `,"addresses":`...)
	if a.Addresses == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i := range a.Addresses {
			if i > 0 {
				b = append(b, ',')
			}
			ad := &a.Addresses[i]
			b = append(b, `{"addr":`...)
			b = appendJSONString(b, ad.Addr)
			b = append(b, `,"type":`...)
			b = appendJSONString(b, ad.Type)
			if ad.Vendor != "" {
				b = append(b, `,"vendor":`...)
				b = appendJSONString(b, ad.Vendor)
			}
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	if len(a.Hostnames) > 0 {
		b = append(b, `,"hostnames":`...)
		b = appendJSONStrings(b, a.Hostnames)
	}
	b = append(b, `,"status":`...)
	b = appendJSONString(b, a.Status)
	if a.OS != "" {
		b = append(b, `,"os":`...)
		b = appendJSONString(b, a.OS)
	}
	if len(a.Services) > 0 {
		b = append(b, `,"services":[`...)
		for i := range a.Services {
			if i > 0 {
				b = append(b, ',')
			}
			s := &a.Services[i]
			b = append(b, `{"protocol":`...)
			b = appendJSONString(b, string(s.Protocol))
			b = append(b, `,"port":`...)
			b = strconv.AppendUint(b, uint64(s.Port), 10)
			b = append(b, `,"state":`...)
			b = appendJSONString(b, s.State)
			for _, f := range [...]struct{ key, v string }{{`,"name":`, s.Name}, {`,"product":`, s.Product}, {`,"version":`, s.Version}} {
				if f.v != "" {
					b = append(b, f.key...)
					b = appendJSONString(b, f.v)
				}
			}
			b = append(b, `,"since":`...)
			b = appendJSONTime(b, s.Since)
			if s.Address != "" {
				b = append(b, `,"address":`...)
				b = appendJSONString(b, s.Address)
			}
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	if len(a.Facts) > 0 {
		b = append(b, `,"facts":`...)
		b = appendJSONMap(b, a.Facts)
	}
	if len(a.Labels) > 0 {
		b = append(b, `,"labels":`...)
		b = appendJSONMap(b, a.Labels)
	}
	if len(a.Sources) > 0 {
		b = append(b, `,"sources":`...)
		b = appendJSONStrings(b, a.Sources)
	}
	if len(a.Scanned) > 0 {
		b = append(b, `,"scanned":{`...)
		protos := make([]string, 0, len(a.Scanned))
		for p := range a.Scanned {
			protos = append(protos, string(p))
		}
		slices.Sort(protos)
		for i, p := range protos {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, p)
			b = append(b, ':')
			rs := a.Scanned[sdk.Protocol(p)]
			if rs == nil {
				b = append(b, "null"...)
				continue
			}
			b = append(b, '[')
			for j, r := range rs {
				if j > 0 {
					b = append(b, ',')
				}
				b = append(b, `{"first":`...)
				b = strconv.AppendUint(b, uint64(r.First), 10)
				b = append(b, `,"last":`...)
				b = strconv.AppendUint(b, uint64(r.Last), 10)
				b = append(b, '}')
			}
			b = append(b, ']')
		}
		b = append(b, '}')
	}
	if a.Unknown {
		b = append(b, `,"unknown":true`...)
	}
	b = append(b, `,"first_seen":`...)
	b = appendJSONTime(b, a.FirstSeen)
	b = append(b, `,"last_seen":`...)
	b = appendJSONTime(b, a.LastSeen)
	b = append(b, `,"last_scanned":`...)
	b = appendJSONTime(b, a.LastScanned)
	if a.LastScannedBy != "" {
		b = append(b, `,"last_scanned_by":`...)
		b = appendJSONString(b, a.LastScannedBy)
	}
	b = append(b, `,"version":`...)
	b = strconv.AppendUint(b, a.Version, 10)
	return append(b, '}')
}

func appendJSONStrings(b []byte, ss []string) []byte {
	b = append(b, '[')
	for i, s := range ss {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, s)
	}
	return append(b, ']')
}

func appendJSONMap(b []byte, m map[string]string) []byte {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, k)
		b = append(b, ':')
		b = appendJSONString(b, m[k])
	}
	return append(b, '}')
}

func appendJSONTime(b []byte, t time.Time) []byte {
	if y := t.Year(); y < 0 || y > 9999 {
		// encoding/json refuses these; let it say so.
		out, _ := json.Marshal(t)
		return append(b, out...)
	}
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"')
}

// appendJSONString quotes s as encoding/json does; plain ASCII, the usual
// case, is copied as is, anything else goes through encoding/json (its
// HTML-safe escapes, U+2028 and invalid UTF-8 included).
func appendJSONString(b []byte, s string) []byte {
	plain := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x80 || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			plain = false
			break
		}
	}
	if plain {
		b = append(b, '"')
		b = append(b, s...)
		return append(b, '"')
	}
	out, _ := json.Marshal(s) // a string always encodes
	return append(b, out...)
}
