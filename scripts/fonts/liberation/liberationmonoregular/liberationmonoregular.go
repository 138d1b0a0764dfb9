// Package liberationmonoregular stands in for the Liberation face of that name with the
// Go font goregular; see the module README.
package liberationmonoregular

import "golang.org/x/image/font/gofont/goregular"

// TTF is the TrueType data of the stand-in face.
var TTF = goregular.TTF
