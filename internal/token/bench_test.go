package token

import "testing"

var sinkParsed Parsed

func BenchmarkParse(b *testing.B) {
	raw, err := Generate(DefaultPrefix, "chat-bridge_prod")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		sinkParsed, err = Parse(DefaultPrefix, raw)
		if err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseRejectsBadChecksum(b *testing.B) {
	raw := mint(DefaultPrefix, "chat-bridge_prod", random56)
	raw = raw[:len(raw)-8] + "00000000"
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(DefaultPrefix, raw); err == nil {
			b.Fatal("accepted a bad checksum")
		}
	}
}

var sinkHash string

func BenchmarkHash(b *testing.B) {
	raw, err := Generate(DefaultPrefix, "chat-bridge_prod")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		sinkHash = Hash(raw)
	}
}
