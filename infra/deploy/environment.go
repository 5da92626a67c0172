package deploy

import (
	"fmt"
	"path/filepath"

	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/zclconf/go-cty/cty"
)

// Environment is where an environment lives, read from the same
// terraform/environments/<env>.tfvars terraform applies, so the deploy and
// terraform cannot disagree.
type Environment struct {
	Project string
	Region  string
}

// Registry is the Artifact Registry repository terraform creates for images.
func (e Environment) Registry() string {
	return e.Region + "-docker.pkg.dev/" + e.Project + "/functions"
}

// LoadEnvironment reads project and region from terraform/environments/<env>.tfvars.
func LoadEnvironment(root, env string) (Environment, error) {
	path := filepath.Join(root, "terraform", "environments", env+".tfvars")
	file, diags := hclparse.NewParser().ParseHCLFile(path)
	if diags.HasErrors() {
		return Environment{}, fmt.Errorf("deploy.LoadEnvironment: %s", diags.Error())
	}
	attrs, diags := file.Body.JustAttributes()
	if diags.HasErrors() {
		return Environment{}, fmt.Errorf("deploy.LoadEnvironment: %s", diags.Error())
	}
	str := func(name string) (string, error) {
		attr, ok := attrs[name]
		if !ok {
			return "", fmt.Errorf("deploy.LoadEnvironment: %s sets no %s", path, name)
		}
		v, diags := attr.Expr.Value(nil)
		if diags.HasErrors() || v.Type() != cty.String {
			return "", fmt.Errorf("deploy.LoadEnvironment: %s: %s is not a plain string", path, name)
		}
		return v.AsString(), nil
	}
	var e Environment
	var err error
	if e.Project, err = str("project"); err != nil {
		return Environment{}, err
	}
	if e.Region, err = str("region"); err != nil {
		return Environment{}, err
	}
	return e, nil
}
