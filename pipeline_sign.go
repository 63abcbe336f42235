package containerization

import (
	"context"
	"fmt"

	"github.com/codomyrmex/containerization/signature"
)

// checkSignKey refuses a signing key that cannot be read or decrypted, before the pipeline runs.
func checkSignKey(path string, password []byte) error {
	data, err := signature.ReadKeyFile(path)
	if err != nil {
		return err
	}
	_, err = signature.ParsePrivateKey(data, password)
	return err
}

// sign signs the pushed digest in its registry, in cosign's format.
func (r *pipelineRun) sign(ctx context.Context) (string, any, error) {
	ro := r.pushRO
	ro.Engine, ro.Progress, ro.Policy = nil, nil, nil
	res, err := r.c.SignImage(ctx, r.pushed, SignOptions{Key: r.p.Path(r.p.Sign.Key), Password: r.opts.KeyPassword, Registry: ro})
	if err != nil {
		return "", res, err
	}
	return fmt.Sprintf("signed %s with key %s (%d signature(s) in %s)", res.Image, res.Key, res.Signatures, res.Tag), res, nil
}
