package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/journeyretry/journeyretry/retry"
)

// The patient journey: register the patient, send a reminder SMS, wait,
// call the clinic's API for the appointment, branch on its answer, record
// the outcome.
const (
	journeyID      = "patient-reminder"
	journeyVersion = 1

	nodeRegister     = "register"
	nodeSendReminder = "send_reminder"
	nodeWait         = "wait"
	nodeCallClinic   = "call_clinic"
	nodeConfirmed    = "record_confirmed"
	nodeReschedule   = "record_reschedule"
	nodeCancelled    = "record_cancelled"

	// Node types: a handler each.
	typeRegister = "register_patient"
	typeSMS      = "send_sms"
	typeClinic   = "clinic_api"
	typeRecord   = "record_outcome"

	// waitDelay is the delay node's wait (a day, scaled down).
	waitDelay = 300 * time.Millisecond
)

// clinicAnswers are the clinic API's answers and the node each leads to.
var clinicAnswers = []struct{ answer, next string }{
	{"confirmed", nodeConfirmed}, {"reschedule", nodeReschedule}, {"cancelled", nodeCancelled},
}

// patient is a run's input.
type patient struct {
	ID        string `json:"patientId"`
	Name      string `json:"name"`
	Phone     string `json:"phone"`
	BirthDate string `json:"birthDate"`
	Clinic    string `json:"clinic"`
}

var clinics = []string{"north", "south", "riverside"}

// newPatient generates patient number i of the seed; a share of them
// (faults.BadPatient) carry a defect that registration rejects.
func (f faults) newPatient(i int) patient {
	key := fmt.Sprint(i)
	p := patient{
		ID:        fmt.Sprintf("P%06d", i),
		Name:      fmt.Sprintf("Patient %d", i),
		Phone:     fmt.Sprintf("+44 7700 9%05d", f.pick(key, "patient", 0, "phone", 100000)),
		BirthDate: fmt.Sprintf("19%02d-%02d-%02d", 30+f.pick(key, "patient", 0, "year", 70), 1+f.pick(key, "patient", 0, "month", 12), 1+f.pick(key, "patient", 0, "day", 28)),
		Clinic:    clinics[f.pick(key, "patient", 0, "clinic", len(clinics))],
	}
	if defect, bad := f.badPatient(i); bad {
		switch defect {
		case "missing phone number":
			p.Phone = ""
		case "birth date in the future":
			p.BirthDate = "2099-01-01"
		default:
			p.Clinic = "atlantis"
		}
	}
	return p
}

// validate is the registration's check of the patient record.
func (p patient) validate() error {
	switch {
	case p.Phone == "":
		return errors.New("missing phone number")
	case p.BirthDate > time.Now().Format(time.DateOnly):
		return errors.New("birth date in the future")
	}
	for _, c := range clinics {
		if p.Clinic == c {
			return nil
		}
	}
	return fmt.Errorf("unknown clinic %q", p.Clinic)
}

// nodeCall is what a handler knows of the attempt it runs.
type nodeCall struct {
	RunID  string
	NodeID string
	// Attempt numbers this node's attempts from 1 (again from 1 after a
	// replay); RunAttempt the run's, all nodes and replays together.
	Attempt, RunAttempt int
	Input               json.RawMessage
}

// handle runs a node of type typ: the demo's node handlers. Whether an
// attempt fails is decided by the fault model from (seed, run, node,
// attempt numbers) alone.
func (f faults) handle(typ string, c nodeCall) (json.RawMessage, error) {
	switch typ {
	case typeRegister:
		var p patient
		if err := json.Unmarshal(c.Input, &p); err != nil {
			return nil, retry.Permanent(retry.WithClass(fmt.Errorf("register patient: decode record: %w", err), retry.ClassValidation))
		}
		if err := p.validate(); err != nil {
			return nil, retry.Permanent(retry.WithClass(fmt.Errorf("invalid patient data: %w", err), retry.ClassValidation))
		}
		if err := f.databaseLock(c, "register patient"); err != nil {
			return nil, err
		}
		return json.RawMessage(`{"registered":true}`), nil
	case typeSMS:
		if err := cmpErr(f.networkBlip(c, "sms gateway"), f.rateLimit(c, "sms gateway")); err != nil {
			return nil, err
		}
		return json.RawMessage(`{"sent":true}`), nil
	case typeClinic:
		if err := cmpErr(f.maintenance(c, "clinic api"), f.networkBlip(c, "clinic api"), f.rateLimit(c, "clinic api")); err != nil {
			return nil, err
		}
		// The executor follows the output's "branch" field.
		answer := f.clinicAnswer(c.RunID)
		return json.Marshal(map[string]string{"answer": answer, "branch": answer})
	case typeRecord:
		if err := f.databaseLock(c, "record outcome"); err != nil {
			return nil, err
		}
		return json.RawMessage(`{"recorded":true}`), nil
	}
	return nil, retry.WithClass(fmt.Errorf("no handler for node type %q", typ), retry.ClassMalformedNode)
}

// clinicAnswer is the clinic's answer for a run: 70% confirmed, 20%
// reschedule, 10% cancelled.
func (f faults) clinicAnswer(run string) string {
	switch u := f.roll(run, nodeCallClinic, 0, "answer"); {
	case u < 0.7:
		return "confirmed"
	case u < 0.9:
		return "reschedule"
	}
	return "cancelled"
}

// cmpErr returns the first non-nil error.
func cmpErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
