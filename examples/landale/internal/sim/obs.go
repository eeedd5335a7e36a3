package sim

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/pyre-go/pyre/examples/landale/internal/events"
)

// Emitter publishes events; *events.Bus is one.
type Emitter interface {
	Publish(ctx context.Context, typ string, data map[string]any) (events.Event, error)
}

// OBSScenes are the scenes of the simulated OBS, in scene-list order.
var OBSScenes = []string{"Starting", "Coding", "Gaming", "IronMON", "Just Chatting", "BRB", "Ending"}

// OBSSim simulates the OBS WebSocket service (Landale's Server.Services.OBS).
// Answers use OBS's own request-response field names.
type OBSSim struct {
	ctl  *Controller
	emit Emitter
	now  func() time.Time

	mu            sync.Mutex
	scene         string
	streaming     bool
	streamSince   time.Time
	recording     bool
	recordSince   time.Time
	virtualCam    bool
	incoming      int64
	connectedFrom time.Time
}

// NewOBS returns an OBS that is connected and idle on scene "Coding".
func NewOBS(ctl *Controller, emit Emitter, now func() time.Time) *OBSSim {
	if now == nil {
		now = time.Now
	}
	return &OBSSim{ctl: ctl, emit: emit, now: now, scene: "Coding", connectedFrom: now()}
}

func (o *OBSSim) gate(ctx context.Context) error {
	if err := o.ctl.Gate(ctx, OBS); err != nil {
		return err
	}
	o.mu.Lock()
	o.incoming++
	o.mu.Unlock()
	return nil
}

// Status returns the service status, as Landale's OBS.get_status.
func (o *OBSSim) Status(ctx context.Context) (map[string]any, error) {
	if err := o.gate(ctx); err != nil {
		return nil, err
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	return map[string]any{
		"connected":     true,
		"status":        "healthy",
		"streaming":     o.streaming,
		"recording":     o.recording,
		"current_scene": o.scene,
		"metadata": map[string]any{
			"connection_state":  "ready",
			"session_id":        "default",
			"websocket_version": "5.5.2",
			"rpc_version":       1,
		},
	}, nil
}

// Scene returns the current program scene (for tests and the generator).
func (o *OBSSim) Scene() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.scene
}

// Streaming reports whether the simulated OBS is streaming.
func (o *OBSSim) Streaming() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.streaming
}

// SceneList returns GetSceneList data.
func (o *OBSSim) SceneList(ctx context.Context) (map[string]any, error) {
	if err := o.gate(ctx); err != nil {
		return nil, err
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	scenes := make([]any, 0, len(OBSScenes))
	for i, name := range OBSScenes {
		// OBS lists scenes bottom-up: sceneIndex 0 is the last one.
		scenes = append(scenes, map[string]any{
			"sceneIndex": len(OBSScenes) - 1 - i,
			"sceneName":  name,
			"sceneUuid":  sceneUUID(i),
		})
	}
	return map[string]any{
		"currentProgramSceneName": o.scene,
		"currentProgramSceneUuid": sceneUUID(slices.Index(OBSScenes, o.scene)),
		"currentPreviewSceneName": nil,
		"currentPreviewSceneUuid": nil,
		"scenes":                  scenes,
	}, nil
}

func sceneUUID(i int) string {
	return fmt.Sprintf("5c3a0b1e-7d2f-4a6b-9c1d-%012x", 0xa0+i)
}

func timecode(d time.Duration) string {
	ms := d.Milliseconds()
	return fmt.Sprintf("%02d:%02d:%02d.%03d", ms/3_600_000, ms/60_000%60, ms/1000%60, ms%1000)
}

// StreamStatus returns GetStreamStatus data.
func (o *OBSSim) StreamStatus(ctx context.Context) (map[string]any, error) {
	if err := o.gate(ctx); err != nil {
		return nil, err
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	var d time.Duration
	if o.streaming {
		d = o.now().Sub(o.streamSince)
	}
	frames := d.Milliseconds() * 60 / 1000
	return map[string]any{
		"outputActive":        o.streaming,
		"outputReconnecting":  false,
		"outputTimecode":      timecode(d),
		"outputDuration":      d.Milliseconds(),
		"outputCongestion":    0.0,
		"outputBytes":         d.Milliseconds() * 750, // 6 Mbit/s
		"outputSkippedFrames": 0,
		"outputTotalFrames":   frames,
	}, nil
}

// RecordStatus returns GetRecordStatus data.
func (o *OBSSim) RecordStatus(ctx context.Context) (map[string]any, error) {
	if err := o.gate(ctx); err != nil {
		return nil, err
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	var d time.Duration
	if o.recording {
		d = o.now().Sub(o.recordSince)
	}
	return map[string]any{
		"outputActive":   o.recording,
		"outputPaused":   false,
		"outputTimecode": timecode(d),
		"outputDuration": d.Milliseconds(),
		"outputBytes":    d.Milliseconds() * 1250,
	}, nil
}

// Stats returns GetStats data.
func (o *OBSSim) Stats(ctx context.Context) (map[string]any, error) {
	if err := o.gate(ctx); err != nil {
		return nil, err
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	up := o.now().Sub(o.connectedFrom)
	cpu := 4.5
	if o.streaming {
		cpu += 6.2
	}
	if o.recording {
		cpu += 3.1
	}
	return map[string]any{
		"cpuUsage":                         cpu,
		"memoryUsage":                      812.4,
		"availableDiskSpace":               412_876.5,
		"activeFps":                        60.0,
		"averageFrameRenderTime":           1.8,
		"renderSkippedFrames":              0,
		"renderTotalFrames":                up.Milliseconds() * 60 / 1000,
		"outputSkippedFrames":              0,
		"outputTotalFrames":                up.Milliseconds() * 60 / 1000,
		"webSocketSessionIncomingMessages": o.incoming,
		"webSocketSessionOutgoingMessages": o.incoming,
	}, nil
}

// Version returns GetVersion data.
func (o *OBSSim) Version(ctx context.Context) (map[string]any, error) {
	if err := o.gate(ctx); err != nil {
		return nil, err
	}
	return map[string]any{
		"obsVersion":            "30.2.3",
		"obsWebSocketVersion":   "5.5.2",
		"rpcVersion":            1,
		"platform":              "macos",
		"platformDescription":   "macOS 14.6.1",
		"supportedImageFormats": []string{"bmp", "jpeg", "jpg", "png", "webp"},
		"availableRequests": []string{"GetVersion", "GetStats", "GetSceneList", "SetCurrentProgramScene",
			"GetStreamStatus", "StartStream", "StopStream", "GetRecordStatus", "StartRecord", "StopRecord",
			"GetVirtualCamStatus", "GetOutputList"},
	}, nil
}

// VirtualCam returns GetVirtualCamStatus data.
func (o *OBSSim) VirtualCam(ctx context.Context) (map[string]any, error) {
	if err := o.gate(ctx); err != nil {
		return nil, err
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	return map[string]any{"outputActive": o.virtualCam}, nil
}

// Outputs returns GetOutputList data.
func (o *OBSSim) Outputs(ctx context.Context) (map[string]any, error) {
	if err := o.gate(ctx); err != nil {
		return nil, err
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	out := func(name, kind string, active bool) map[string]any {
		return map[string]any{"outputName": name, "outputKind": kind, "outputActive": active,
			"outputWidth": 1920, "outputHeight": 1080, "outputFlags": map[string]any{
				"OBS_OUTPUT_AUDIO": true, "OBS_OUTPUT_VIDEO": true, "OBS_OUTPUT_ENCODED": true}}
	}
	return map[string]any{"outputs": []any{
		out("simple_stream", "rtmp_output", o.streaming),
		out("simple_file_output", "ffmpeg_muxer", o.recording),
		out("virtualcam_output", "virtualcam_output", o.virtualCam),
	}}, nil
}

// StartStreaming starts the stream; like the real service it answers
// {:ok, nil}: a nil map and no error.
func (o *OBSSim) StartStreaming(ctx context.Context) (map[string]any, error) {
	return o.setOutput(ctx, "StartStream", &o.streaming, &o.streamSince, true, "obs.stream_started")
}

// StopStreaming stops the stream.
func (o *OBSSim) StopStreaming(ctx context.Context) (map[string]any, error) {
	return o.setOutput(ctx, "StopStream", &o.streaming, &o.streamSince, false, "obs.stream_stopped")
}

// StartRecording starts recording.
func (o *OBSSim) StartRecording(ctx context.Context) (map[string]any, error) {
	return o.setOutput(ctx, "StartRecord", &o.recording, &o.recordSince, true, "obs.recording_started")
}

// StopRecording stops recording; OBS answers with the output path.
func (o *OBSSim) StopRecording(ctx context.Context) (map[string]any, error) {
	return o.setOutput(ctx, "StopRecord", &o.recording, &o.recordSince, false, "obs.recording_stopped")
}

func (o *OBSSim) setOutput(ctx context.Context, request string, flag *bool, since *time.Time, on bool, evType string) (map[string]any, error) {
	if err := o.gate(ctx); err != nil {
		return nil, err
	}
	o.mu.Lock()
	if *flag == on {
		o.mu.Unlock()
		state := "not active"
		if on {
			state = "already active"
		}
		return nil, &ServiceError{Service: OBS, Reason: "request_failed",
			Message: fmt.Sprintf("OBS request %s failed: output %s", request, state)}
	}
	*flag = on
	*since = o.now()
	o.mu.Unlock()
	state := "OBS_WEBSOCKET_OUTPUT_STOPPED"
	if on {
		state = "OBS_WEBSOCKET_OUTPUT_STARTED"
	}
	o.publish(ctx, evType, map[string]any{"output_active": on, "output_state": state, "session_id": "default"})
	if request == "StopRecord" {
		return map[string]any{"outputPath": "/Users/streamer/Movies/" + o.now().Format("2006-01-02 15-04-05") + ".mkv"}, nil
	}
	return nil, nil
}

// SetCurrentScene switches the program scene.
func (o *OBSSim) SetCurrentScene(ctx context.Context, name string) (map[string]any, error) {
	if err := o.gate(ctx); err != nil {
		return nil, err
	}
	if !slices.Contains(OBSScenes, name) {
		return nil, &ServiceError{Service: OBS, Reason: "not_found",
			Message: fmt.Sprintf("No source was found by the name of `%s`.", name)}
	}
	o.mu.Lock()
	prev := o.scene
	o.scene = name
	o.mu.Unlock()
	if prev != name {
		o.publish(ctx, "obs.scene_changed", map[string]any{"scene_name": name, "previous_scene": prev, "session_id": "default"})
	}
	return nil, nil
}

func (o *OBSSim) publish(ctx context.Context, typ string, data map[string]any) {
	if o.emit != nil {
		_, _ = o.emit.Publish(context.WithoutCancel(ctx), typ, data)
	}
}

// ModeChanged publishes the connection events of OBS going down or coming
// back, as the real WebSocket connection does.
func (o *OBSSim) ModeChanged(ctx context.Context, from, to Mode) {
	switch {
	case to == Down:
		o.publish(ctx, "obs.connection_lost", map[string]any{"session_id": "default", "reason": "connection refused", "reconnecting": true})
	case from == Down:
		o.mu.Lock()
		o.connectedFrom = o.now()
		o.mu.Unlock()
		o.publish(ctx, "obs.connection_established", map[string]any{"session_id": "default",
			"websocket_version": "5.5.2", "rpc_version": 1, "authentication": true})
	}
}
