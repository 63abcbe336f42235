// Package credstore is Myrmex's own registry credential store: the registry logins that `myrmex registry login`
// saves, encrypted at rest, and a go-containerregistry keychain over them so that every pull and push can use
// them (the specification's ContainerRegistry.credentials keeps its password "Encrypted").
//
// # Format
//
// All logins live in one file, credentials.json.enc in the configuration directory:
//
//	"MYRMEXCS"  8 bytes   magic
//	version     1 byte    format version, 1
//	nonce       12 bytes  random, fresh for every write
//	ciphertext  rest      AES-256-GCM of the JSON map registry → {username, password, token}, tag included
//
// The magic and version are authenticated as additional data, so a change to any byte of the file makes it
// fail to open: a file that does not decrypt is an error wrapping [errdefs.ErrUnauthorized] ("cannot decrypt:
// wrong key or damaged file"), never an empty store. The whole map is one blob, so the file does not reveal
// which registries are stored. Writes go to a 0600 temporary file in the same directory, are synced, then
// renamed over the old file; a read-modify-write holds a mutex within the process and an flock on
// credentials.lock across processes.
//
// # Key
//
// The 32-byte AES key is, in order: [Options.Key]; the environment variable MYRMEX_CREDENTIALS_KEY (base64 of 32
// bytes); or the key file credentials.key beside the store, which holds the key in that same base64 form, is
// created with 32 random bytes and mode 0600 (directory 0700) on the first write, and is refused if group or
// others may read it.
//
// # Threat model
//
// The encryption protects against someone who has credentials.json.enc but not the key: the file alone, copied
// off the machine or attached to a bug report, or the whole configuration directory (a backup, a dotfiles
// repository) when the key comes from MYRMEX_CREDENTIALS_KEY. With the default key source the key file sits
// beside the encrypted file, guarded only by its mode: whoever can read the user's files (root, a backup of the
// whole directory) reads both, and to them the logins are about as exposed as in Docker's config.json. To
// separate them, keep the key elsewhere and pass it in MYRMEX_CREDENTIALS_KEY (from a secret manager or the OS
// keyring, say); the contents of an existing key file can be moved there as they are. Nothing protects against
// code running as the user, which can read the key wherever it is.
//
// Registry names are normalised the way Docker keys its config: lowercase host[:port], scheme and path dropped,
// and Docker Hub's aliases (docker.io, index.docker.io, registry-1.docker.io, https://index.docker.io/v1/) all
// stored as index.docker.io, the name go-containerregistry gives Docker Hub.
package credstore
