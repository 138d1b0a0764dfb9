package wire

import "encoding/json"

// PeekID returns the "id" of a JSON reading without decoding it, for a
// reading refused before decoding (queue_full): its error report then
// names it, so the sender knows which reading to send again. It scans the
// top-level keys of one object, skipping the values of the others (nested
// arrays and objects included) without allocating. nil when the payload
// is not an object, has no id, or its id is not one that decoding would
// echo (a number, or a valid UTF-8 string of at most 128 bytes).
func PeekID(b []byte) []byte {
	i := skipWS(b, 0)
	if i >= len(b) || b[i] != '{' {
		return nil
	}
	i++
	for {
		i = skipWS(b, i)
		if i >= len(b) || b[i] != '"' {
			return nil
		}
		kEnd := skipString(b, i)
		if kEnd < 0 {
			return nil
		}
		key := b[i+1 : kEnd-1]
		i = skipWS(b, kEnd)
		if i >= len(b) || b[i] != ':' {
			return nil
		}
		i = skipWS(b, i+1)
		end := skipValue(b, i)
		if end < 0 {
			return nil
		}
		// encoding/json matches keys without regard to case.
		if len(key) == 2 && key[0]|0x20 == 'i' && key[1]|0x20 == 'd' {
			id := b[i:end]
			if !scalarJSON(id, 128) || !json.Valid(id) { // json.Valid: no trailing control byte
				return nil
			}
			return id
		}
		i = skipWS(b, end)
		if i >= len(b) || b[i] != ',' {
			return nil
		}
		i++
	}
}

func skipWS(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// skipString returns the index after the string starting at b[i] ('"'),
// -1 if it does not end.
func skipString(b []byte, i int) int {
	for i++; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return -1
}

// skipValue returns the index after the value starting at b[i], -1 if it
// does not end. Only the nesting is checked: the id alone is validated.
func skipValue(b []byte, i int) int {
	depth := 0
	for i < len(b) {
		switch b[i] {
		case '"':
			if i = skipString(b, i); i < 0 {
				return -1
			}
			if depth == 0 {
				return i
			}
			continue
		case '{', '[':
			depth++
		case '}', ']':
			if depth == 0 {
				return i // the end of the enclosing object
			}
			if depth--; depth == 0 {
				return i + 1
			}
		case ',', ' ', '\t', '\n', '\r':
			if depth == 0 {
				return i
			}
		}
		i++
	}
	if depth == 0 {
		return i
	}
	return -1
}
