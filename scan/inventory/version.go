package inventory

import scalibrversion "github.com/google/osv-scalibr/version"

// ScalibrVersion is the version of osv-scalibr, the library that lists the packages, as that library reports it.
const ScalibrVersion = "v" + scalibrversion.ScannerVersion
