// Package nmapxml reads nmap's XML output (-oX) as a stream, one <host> at
// a time, from any io.Reader: a running nmap's stdout or a file. It never
// holds the whole document, only the host being read and a bounded buffer.
//
// It is a purpose-built scanner for the XML nmap writes, not a general XML
// parser: about ten times faster than encoding/xml on nmap output (see
// docs/benchmarks.md), because it knows the schema, skips what it does not
// need without building tokens for it, interns the few hundred distinct
// strings a scan repeats (states, reasons, protocols, service names), and
// allocates nothing for markup it only has to check.
//
// What it accepts is well-formed XML 1.0 in UTF-8: elements, attributes in
// either quote style, the five predefined entities and numeric character
// references, CDATA sections, comments, processing instructions (the XML
// declaration must say UTF-8 or US-ASCII if it names an encoding) and a
// DOCTYPE. What it refuses, with a *SyntaxError naming the byte offset and
// what was expected there:
//   - anything malformed or truncated (a document that ends before
//     </nmaprun> is truncated: errors.Is(err, io.ErrUnexpectedEOF));
//   - any <!ENTITY declaration (nmap declares none; refusing them rules out
//     entity expansion bombs) and references to undeclared entities
//     (ErrEntity);
//   - invalid UTF-8 and characters XML forbids (controls other than tab,
//     newline and carriage return, U+FFFE, U+FFFF), in text and in
//     attribute values alike: they are refused, not replaced, because a
//     replaced byte would silently change an address, a banner or a version
//     string that sollwert then compares (ErrInvalidChar);
//   - nesting deeper than MaxDepth, a single token (tag, comment, kept
//     text) larger than Options.MaxTokenSize, more than MaxAttrs attributes
//     on one element (ErrLimit): each is found while reading, before the
//     memory is spent.
//
// Unknown elements are skipped (checked for well-formedness only), so a
// newer nmap's additions do not break reading. Script output keeps the id
// and output attributes; the structured <elem>/<table> children are checked
// and skipped. Attribute values are not whitespace-normalised and "\r\n" is
// not folded (nmap escapes newlines in attributes as &#xa;), as with
// encoding/xml.
//
// The package owns no global state and starts no goroutines.
package nmapxml
