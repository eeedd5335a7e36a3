package redis

// Slot exposes the hash-slot function to the external tests.
var Slot = slot
