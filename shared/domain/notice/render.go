package notice

import (
	"bytes"
	"embed"
	"fmt"
	htmltemplate "html/template"
	texttemplate "text/template"
)

//go:embed templates/*.tmpl
var templateFS embed.FS

var (
	textTemplates = texttemplate.Must(texttemplate.New("text").Option("missingkey=error").ParseFS(templateFS, "templates/text.tmpl"))
	htmlTemplates = htmltemplate.Must(htmltemplate.New("html").Option("missingkey=error").ParseFS(templateFS, "templates/html.tmpl"))
)

// Render writes the e-mail's plain-text and HTML parts from the templates in
// templates/. html/template escapes every field in the HTML part, the
// customer's name among them.
func Render(e Email) (text, html string, err error) {
	var t, h bytes.Buffer
	for _, name := range []string{"header", string(e.Kind), "footer"} {
		if err := textTemplates.ExecuteTemplate(&t, name, e); err != nil {
			return "", "", fmt.Errorf("notice.Render: text %s: %w", name, err)
		}
		if err := htmlTemplates.ExecuteTemplate(&h, name, e); err != nil {
			return "", "", fmt.Errorf("notice.Render: html %s: %w", name, err)
		}
	}
	return t.String(), h.String(), nil
}
