package signature

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/secure-systems-lab/go-securesystemslib/encrypted"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	sigstore "github.com/sigstore/sigstore/pkg/signature"

	"github.com/codomyrmex/containerization/errdefs"
)

// The PEM types of private keys cosign writes and reads: a PKCS #8 key encrypted with scrypt and NaCl secretbox
// (go-securesystemslib's encrypted package). cosign writes the first; older versions wrote the second.
const (
	SigstorePrivateKeyType = "ENCRYPTED SIGSTORE PRIVATE KEY"
	CosignPrivateKeyType   = "ENCRYPTED COSIGN PRIVATE KEY"
)

// ErrPassword is an encrypted private key that does not decrypt with the password given: secretbox cannot tell
// a wrong password from damaged bytes.
var ErrPassword = errors.New("cannot decrypt it: a wrong password, or a damaged key")

// MaxPEM bounds a key file: the largest RSA key cosign accepts (4096 bits) is under 4 KiB in PEM.
const MaxPEM = 64 << 10

// Signer is a private key that signs image digests.
type Signer struct {
	sv  sigstore.SignerVerifier
	pub *Key
}

// Key is a public key that verifies signatures.
type Key struct {
	// Fingerprint is "sha256:" and the hex of the SHA-256 of the key's PKIX (SubjectPublicKeyInfo) DER: what
	// results and messages name it by.
	Fingerprint string `json:"fingerprint"`
	// Source is where the key was read from: a file, or "inline" for PEM given as it is.
	Source string `json:"source"`

	verifier sigstore.Verifier
}

// PublicKey is the key that verifies the signer's signatures.
func (s *Signer) PublicKey() *Key { return s.pub }

// PEM is the key as PKIX PEM, as cosign writes cosign.pub.
func (k *Key) PEM() ([]byte, error) {
	pub, err := k.verifier.PublicKey()
	if err != nil {
		return nil, err
	}
	return cryptoutils.MarshalPublicKeyToPEM(pub)
}

// GenerateKeyPair makes an ECDSA P-256 key pair, as cosign generate-key-pair does: the private key as PKCS #8
// encrypted with password (cosign's "ENCRYPTED SIGSTORE PRIVATE KEY"; an empty password is allowed, as cosign
// allows it), the public key as PKIX PEM. cosign reads both.
func GenerateKeyPair(password []byte) (privatePEM, publicPEM []byte, err error) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, nil, err
	}
	box, err := encrypted.Encrypt(der, password)
	if err != nil {
		return nil, nil, err
	}
	publicPEM, err = cryptoutils.MarshalPublicKeyToPEM(priv.Public())
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: SigstorePrivateKeyType, Bytes: box}), publicPEM, nil
}

// ParsePrivateKey reads a private key: cosign's encrypted PEM (decrypted with password), or an unencrypted
// PKCS #8, SEC 1 (EC PRIVATE KEY) or PKCS #1 (RSA PRIVATE KEY) PEM. ECDSA (P-256, P-384, P-521), RSA (2048 to
// 4096 bits) and Ed25519 keys sign; digests are SHA-256, as cosign verifies them. Anything else, and a wrong
// password, wraps errdefs.ErrInvalidArgument.
func ParsePrivateKey(data, password []byte) (*Signer, error) {
	bad := func(format string, args ...any) (*Signer, error) {
		return nil, fmt.Errorf("%w: private key: %s", errdefs.ErrInvalidArgument, fmt.Sprintf(format, args...))
	}
	if len(data) > MaxPEM {
		return bad("larger than %d bytes: not a key", MaxPEM)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		return bad("no PEM block")
	}
	var (
		pk  crypto.PrivateKey
		err error
	)
	switch block.Type {
	case SigstorePrivateKeyType, CosignPrivateKeyType:
		der, derr := encrypted.Decrypt(block.Bytes, password)
		if derr != nil {
			return nil, fmt.Errorf("%w: private key: %w", errdefs.ErrInvalidArgument, ErrPassword)
		}
		pk, err = x509.ParsePKCS8PrivateKey(der)
	case "PRIVATE KEY":
		pk, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "EC PRIVATE KEY":
		pk, err = x509.ParseECPrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		pk, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	default:
		return bad("PEM type %q: want %q (cosign's), or an unencrypted PRIVATE KEY", block.Type, SigstorePrivateKeyType)
	}
	if err != nil {
		return bad("%v", err)
	}
	signer, ok := pk.(crypto.Signer)
	if !ok {
		return bad("a %T cannot sign", pk)
	}
	if err := cryptoutils.ValidatePubKey(signer.Public()); err != nil { //nolint:staticcheck // the key sizes cosign accepts
		return bad("%v", err)
	}
	sv, err := sigstore.LoadSignerVerifier(pk, crypto.SHA256)
	if err != nil {
		return bad("%v", err)
	}
	pub, err := newKey(signer.Public(), "")
	if err != nil {
		return bad("%v", err)
	}
	return &Signer{sv: sv, pub: pub}, nil
}

// ParsePublicKey reads a PKIX PEM public key (cosign.pub), naming it by source.
func ParsePublicKey(data []byte, source string) (*Key, error) {
	bad := func(format string, args ...any) (*Key, error) {
		return nil, fmt.Errorf("%w: public key %s: %s", errdefs.ErrInvalidArgument, source, fmt.Sprintf(format, args...))
	}
	if len(data) > MaxPEM {
		return bad("larger than %d bytes: not a key", MaxPEM)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		return bad("no PEM block")
	}
	if block.Type != "PUBLIC KEY" {
		return bad("PEM type %q: want PUBLIC KEY (a PKIX public key, as cosign writes cosign.pub)", block.Type)
	}
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return bad("%v", err)
	}
	if err := cryptoutils.ValidatePubKey(pub); err != nil { //nolint:staticcheck // the key sizes cosign accepts
		return bad("%v", err)
	}
	k, err := newKey(pub, source)
	if err != nil {
		return bad("%v", err)
	}
	return k, nil
}

// ReadPublicKey reads a public key given as PEM text ("-----BEGIN PUBLIC KEY-----…") or as the name of a PEM
// file; a relative file name is read from dir when dir is not empty.
func ReadPublicKey(keyOrFile, dir string) (*Key, error) {
	if strings.HasPrefix(strings.TrimSpace(keyOrFile), "-----BEGIN") {
		return ParsePublicKey([]byte(keyOrFile), "inline")
	}
	file := keyOrFile
	if dir != "" && !filepath.IsAbs(file) {
		file = filepath.Join(dir, file)
	}
	data, err := ReadKeyFile(file)
	if err != nil {
		return nil, err
	}
	return ParsePublicKey(data, keyOrFile)
}

// ReadKeyFile reads a key file: a regular file (a FIFO or a device is refused, not read) of at most MaxPEM bytes.
func ReadKeyFile(file string) ([]byte, error) {
	// A FIFO would block the open itself: only a regular file is opened (and checked again once open).
	st, err := os.Stat(file)
	if err == nil && !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%w: key file %s is not a regular file", errdefs.ErrInvalidArgument, file)
	}
	f, err := os.Open(file)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w: key file %s does not exist", errdefs.ErrInvalidArgument, file)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: key file: %v", errdefs.ErrInvalidArgument, err)
	}
	defer f.Close()
	if st, err := f.Stat(); err != nil || !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%w: key file %s is not a regular file", errdefs.ErrInvalidArgument, file)
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxPEM+1))
	if err != nil {
		return nil, fmt.Errorf("%w: reading key file %s: %v", errdefs.ErrInvalidArgument, file, err)
	}
	if len(data) > MaxPEM {
		return nil, fmt.Errorf("%w: key file %s is larger than %d bytes: not a key", errdefs.ErrInvalidArgument, file, MaxPEM)
	}
	return data, nil
}

func newKey(pub crypto.PublicKey, source string) (*Key, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, err
	}
	v, err := sigstore.LoadVerifier(pub, crypto.SHA256)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(der)
	return &Key{Fingerprint: "sha256:" + hex.EncodeToString(sum[:]), Source: source, verifier: v}, nil
}

// verifies reports whether sig is k's signature of payload.
func (k *Key) verifies(sig, payload []byte) bool {
	return k.verifier.VerifySignature(bytes.NewReader(sig), bytes.NewReader(payload)) == nil
}
