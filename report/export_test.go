package report

// GraphSVG is graphSVG, for the layout tests of package report_test.
var GraphSVG = graphSVG
