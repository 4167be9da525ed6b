package route

import (
	"errors"

	"github.com/clerknovu/pipeline/pkg/events"
)

// Plan returns the commands the router publishes for ev under rules: the
// trigger commands of the targets [Route] finds and the sync commands of the
// rules' [Sync], building ev's subscriber at most once for both.
//
// An event that no rule routes ([ErrNoRoute]) still gets its sync commands,
// with no trigger commands and a nil error; when it has none either, Plan
// returns the ErrNoRoute error and the router skips the event. Any other
// error, from routing or from making either kind of command, is one the
// router dead-letters the event for.
func Plan(rules *Rules, ev events.Event, src Source, opts BuildOptions) ([]events.TriggerCommand, []events.SyncCommand, error) {
	targets, routeErr := Route(rules, ev)
	if routeErr != nil && !errors.Is(routeErr, ErrNoRoute) {
		return nil, nil, routeErr
	}
	commander := NewCommander(ev, opts) // builds ev's subscriber once for both kinds of command
	syncs, err := commander.SyncCommands(rules.Sync(), src)
	if err != nil {
		return nil, nil, err
	}
	if routeErr != nil {
		if len(syncs) == 0 {
			return nil, nil, routeErr // not routed, nothing to sync: skipped
		}
		return nil, syncs, nil
	}
	cmds, err := commander.Commands(src, targets)
	if err != nil {
		return nil, nil, err
	}
	return cmds, syncs, nil
}
