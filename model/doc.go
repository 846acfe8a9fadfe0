// Package model holds the records sollwert keeps: assets and their
// versions, deviations, and job runs. It owns the pure logic that decides
// how an observation changes an asset (merge.go), so that the store only
// persists and the rules engine only judges.
package model
