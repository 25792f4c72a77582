"""The streaming scheduler: JobGenerator (one job set per batch), JobScheduler (runs them in order),
ReceiverTracker (receivers and their blocks) and RateController (backpressure)."""
