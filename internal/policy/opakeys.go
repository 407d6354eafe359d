package policy

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"

	"github.com/open-policy-agent/opa/v1/keys"
)

// testOnlyPublicKey is tests/testdata/bundle-signing/test-only-signing-key.pub.pem:
// its private half is public in git, so a server that trusts it accepts
// bundles signed by anyone (a test keeps the two equal).
const testOnlyPublicKey = `-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAtc5x2+T+YaHIB7Ifp2sR
vZd1rxG3RP7ozT3C1x58yb7LBPAyIfaMO1QcW0ZHpMgfdyjUDbm1RWSYLCsMvHBC
WwhN/gS76UScFRJQGXdnf6xGBlqGZfatQLhFshnHYfTg3fZYo+cEVcgsb4VqDDdn
KYHCAb0O0Quh2D7/XQxlGxpzrvILhDrrBVEioH/C5PVRgqVS4CyNRTcyjk4qlJ6Q
+fZldrHAWOIoDpcoEN2qG/LGP9k4SFcL4fZa6GLPh0vxVLQoynJczUOr+mUPSZFQ
w/hh7SQBN6eCBRPaL7AIpg0Bxg3JYrEED0zK9nfMGEGDOJzuvSvhpe2Xbqgie/fQ
IwIDAQAB
-----END PUBLIC KEY-----
`

// checkKeys parses every configured verification key for its algorithm,
// as OPA would only when the first signed bundle arrives, so that a key
// that is not one stops the start; it returns the ids of keys that are
// the repository's test-only key.
func checkKeys(configured map[string]*keys.Config) (testOnly []string, err error) {
	testKey, _ := publicKey(testOnlyPublicKey)
	for _, id := range sortedKeys(configured) {
		k := configured[id]
		if k.Key == "" || strings.HasPrefix(k.Algorithm, "HS") { // HMAC: any secret; signing-only keys verify nothing
			continue
		}
		pub, err := publicKey(k.Key)
		if err == nil {
			err = fitsAlgorithm(pub, k.Algorithm)
		}
		if err != nil {
			return nil, fmt.Errorf("keys.%s: %w", id, err)
		}
		if eq, ok := pub.(interface{ Equal(crypto.PublicKey) bool }); ok && eq.Equal(testKey) {
			testOnly = append(testOnly, id)
		}
	}
	return testOnly, nil
}

// publicKey reads a PEM block of the kinds OPA's bundle verification
// accepts (a public key, a certificate, or a private key whose public half is used).
func publicKey(text string) (crypto.PublicKey, error) {
	block, _ := pem.Decode([]byte(text))
	if block == nil {
		return nil, errors.New("key is not PEM")
	}
	var (
		key any
		err error
	)
	switch block.Type {
	case "RSA PUBLIC KEY":
		key, err = x509.ParsePKCS1PublicKey(block.Bytes)
	case "PUBLIC KEY":
		key, err = x509.ParsePKIXPublicKey(block.Bytes)
	case "CERTIFICATE":
		var cert *x509.Certificate
		if cert, err = x509.ParseCertificate(block.Bytes); err == nil {
			key = cert.PublicKey
		}
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("PEM block %q is not a key", block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("PEM block %q: %w", block.Type, err)
	}
	if priv, ok := key.(crypto.Signer); ok {
		return priv.Public(), nil
	}
	return key, nil
}

// fitsAlgorithm refuses a key of another kind than the algorithm verifies with.
func fitsAlgorithm(pub crypto.PublicKey, alg string) error {
	var ok bool
	switch {
	case strings.HasPrefix(alg, "RS"), strings.HasPrefix(alg, "PS"):
		_, ok = pub.(*rsa.PublicKey)
	case strings.HasPrefix(alg, "ES"):
		_, ok = pub.(*ecdsa.PublicKey)
	case alg == "EdDSA":
		_, ok = pub.(ed25519.PublicKey)
	default:
		ok = true // OPA refuses unknown algorithms itself
	}
	if !ok {
		return fmt.Errorf("a %T cannot verify %s signatures", pub, alg)
	}
	return nil
}
