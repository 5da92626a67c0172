package config

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

type settings struct {
	Common
	Secret  string        `env:"CONFIG_TEST_SECRET,required,notEmpty"`
	Name    string        `env:"CONFIG_TEST_NAME" envDefault:"default-name"`
	Count   int           `env:"CONFIG_TEST_COUNT" envDefault:"5"`
	Every   time.Duration `env:"CONFIG_TEST_EVERY" envDefault:"10m"`
	Items   List          `env:"CONFIG_TEST_ITEMS"`
	Numbers Ints          `env:"CONFIG_TEST_NUMBERS" envDefault:"3,7,14"`
	Nested  nested
}

type nested struct {
	Days int `env:"CONFIG_TEST_DAYS" envDefault:"30"`
}

func (s *settings) Validate() error {
	if s.Count < 1 {
		return errors.New("CONFIG_TEST_COUNT must be >= 1")
	}
	return nil
}

var variables = []string{
	"GOOGLE_CLOUD_PROJECT", "FIRESTORE_DATABASE", "DEAD_LETTER_TOPIC", "CONFIG_TEST_SECRET", "CONFIG_TEST_NAME", "CONFIG_TEST_COUNT",
	"CONFIG_TEST_EVERY", "CONFIG_TEST_ITEMS", "CONFIG_TEST_NUMBERS", "CONFIG_TEST_DAYS",
}

func setEnv(t *testing.T, env map[string]string) {
	for _, k := range variables {
		t.Setenv(k, env[k])
	}
}

func TestDefaultsApplyWhenUnsetOrEmpty(t *testing.T) {
	setEnv(t, map[string]string{"CONFIG_TEST_SECRET": "s"})
	got, err := Read[settings]()
	if err != nil {
		t.Fatal(err)
	}
	want := settings{
		Common: Common{Project: "fulfillment-local", Database: "(default)"}, Secret: "s", Name: "default-name", Count: 5,
		Every: 10 * time.Minute, Numbers: Ints{3, 7, 14}, Nested: nested{Days: 30},
	}
	if got.CommonSettings() != want.Common || got.Secret != want.Secret || got.Name != want.Name || got.Count != want.Count ||
		got.Every != want.Every || len(got.Items) != 0 || !slices.Equal(got.Numbers, want.Numbers) || got.Nested != want.Nested {
		t.Fatalf("Read = %+v, want %+v", got, want)
	}
}

func TestValuesAreReadListsTrimmed(t *testing.T) {
	setEnv(t, map[string]string{
		"GOOGLE_CLOUD_PROJECT": "p", "FIRESTORE_DATABASE": "webhooks", "DEAD_LETTER_TOPIC": "dl", "CONFIG_TEST_SECRET": "s", "CONFIG_TEST_COUNT": "2",
		"CONFIG_TEST_EVERY": "90s", "CONFIG_TEST_ITEMS": " a, b,,c ", "CONFIG_TEST_NUMBERS": "1, 2", "CONFIG_TEST_DAYS": "4",
	})
	got, err := Read[settings]()
	if err != nil {
		t.Fatal(err)
	}
	if got.Project != "p" || got.Database != "webhooks" || got.DeadLetterTopic != "dl" || got.Count != 2 || got.Every != 90*time.Second ||
		!slices.Equal(got.Items, List{"a", "b", "c"}) || !slices.Equal(got.Numbers, Ints{1, 2}) || got.Nested.Days != 4 {
		t.Fatalf("Read = %+v", got)
	}
}

func TestErrorsNameTheVariables(t *testing.T) {
	cases := []struct {
		name string
		env  map[string]string
		want []string
	}{
		{"required unset", nil, []string{"CONFIG_TEST_SECRET"}},
		{"bad values, all at once", map[string]string{"CONFIG_TEST_SECRET": "s", "CONFIG_TEST_COUNT": "five", "CONFIG_TEST_EVERY": "soon", "CONFIG_TEST_NUMBERS": "3,x", "CONFIG_TEST_DAYS": "y"},
			[]string{"CONFIG_TEST_COUNT", "CONFIG_TEST_EVERY", "CONFIG_TEST_NUMBERS", "CONFIG_TEST_DAYS"}},
		{"validation", map[string]string{"CONFIG_TEST_SECRET": "s", "CONFIG_TEST_COUNT": "0"}, []string{"CONFIG_TEST_COUNT"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			setEnv(t, c.env)
			_, err := Read[settings]()
			if err == nil {
				t.Fatal("Read accepted")
			}
			for _, v := range c.want {
				if !strings.Contains(err.Error(), v) {
					t.Errorf("error %q does not name %s", err, v)
				}
			}
		})
	}
}
