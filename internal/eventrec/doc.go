// Package eventrec records events.k8s.io/v1 Events like client-go's events broadcaster
// (k8s.io/client-go/tools/events), with the same names, fields and series, but keeps far less
// in memory while it correlates them.
//
// client-go's broadcaster, the one behind the manager's GetEventRecorder, keeps a deep copy of
// every Event it sent for 6 to 12 minutes, keyed by a struct of 19 strings, to turn a repeated
// event into a series. At 10,000 CipherscaleUsers that is about 17 MB of a 73 MB live heap,
// for events that are almost never repeated (the key includes the object's resourceVersion,
// which every status write changes). This recorder keeps, per event sent, a 16-byte hash of the
// same key, the Event's name and its time; the full Event only once it has become a series.
package eventrec
