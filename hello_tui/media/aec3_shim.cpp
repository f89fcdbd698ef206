// AEC3 with a tuned EchoCanceller3Config, for hello_tui/media/audio_processing.py (ctypes).
//
// pywebrtc-audio 0.2.0's AudioProcessor builds AEC3 with the default config and
// exposes none of it; its extension exports the WebRTC C++ symbols, so this file
// is compiled against the headers of the *same* sdist (pinned, checksummed: dev.sh)
// and linked against the installed extension. It repeats AudioProcessor's chain
// (bindings/webrtc_audio_bindings.cpp, Apache-2.0: HPF, AEC3, NS, AGC2 in the
// same order, Agc2State copied verbatim) with the config given by the caller.
// ABI: struct layouts come from those headers; a different pywebrtc-audio
// version may change them, so the Python side refuses any other version.
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "api/echo_canceller3_config.h"
#include "api/echo_canceller3_factory.h"
#include "api/echo_control.h"
#include "api/audio/audio_processing.h"
#include "api/audio/audio_view.h"
#include "api/field_trials_view.h"
#include "audio_processing/audio_buffer.h"
#include "audio_processing/audio_frame.h"
#include "audio_processing/high_pass_filter.h"
#include "audio_processing/include/audio_util.h"
#include "audio_processing/agc2/adaptive_digital_gain_controller.h"
#include "audio_processing/agc2/agc2_common.h"
#include "audio_processing/agc2/cpu_features.h"
#include "audio_processing/agc2/gain_applier.h"
#include "audio_processing/agc2/limiter.h"
#include "audio_processing/agc2/noise_level_estimator.h"
#include "audio_processing/agc2/saturation_protector.h"
#include "audio_processing/agc2/speech_level_estimator.h"
#include "audio_processing/agc2/vad_wrapper.h"
#include "audio_processing/logging/apm_data_dumper.h"
#include "audio_processing/ns/noise_suppressor.h"
#include "audio_processing/ns/ns_config.h"

namespace {

// AGC2 constants
constexpr int kAgcAdjacentSpeechFramesThreshold = 12;

struct Agc2State {
    std::unique_ptr<webrtc::ApmDataDumper> dumper;
    std::unique_ptr<webrtc::VoiceActivityDetectorWrapper> vad;
    std::unique_ptr<webrtc::NoiseLevelEstimator> noise_estimator;
    std::unique_ptr<webrtc::SpeechLevelEstimator> speech_estimator;
    std::unique_ptr<webrtc::SaturationProtector> saturation_protector;
    std::unique_ptr<webrtc::AdaptiveDigitalGainController> adaptive_ctrl;
    std::unique_ptr<webrtc::Limiter> limiter;
    webrtc::GainApplier fixed_gain_applier;

    webrtc::AudioProcessing::Config::GainController2::AdaptiveDigital ad_config;
    bool adaptive_enabled;
    int sample_rate;
    float last_gain_db = 0.0f;
    float last_speech_probability = 0.0f;

    Agc2State(float fixed_gain_db, bool adaptive, float max_gain_db,
              float headroom_db, float max_change_per_sec,
              float max_noise_dbfs, int sample_rate_, int frame_size)
        : fixed_gain_applier(true, webrtc::DbToRatio(fixed_gain_db)),
          adaptive_enabled(adaptive), sample_rate(sample_rate_) {

        dumper = std::make_unique<webrtc::ApmDataDumper>(0);

        ad_config.enabled = adaptive;
        ad_config.headroom_db = headroom_db;
        ad_config.max_gain_db = max_gain_db;
        ad_config.initial_gain_db = 15.0f;
        ad_config.max_gain_change_db_per_second = max_change_per_sec;
        ad_config.max_output_noise_level_dbfs = max_noise_dbfs;
        reset(frame_size);  // the same construction as a reset: one copy of it
    }

    void reset(int frame_size) {
        webrtc::FieldTrialsView field_trials;
        auto cpu = webrtc::GetAvailableCpuFeatures();
        vad = std::make_unique<webrtc::VoiceActivityDetectorWrapper>(
            cpu, sample_rate);
        noise_estimator = webrtc::CreateNoiseFloorEstimator(dumper.get());
        speech_estimator = webrtc::SpeechLevelEstimator::Create(
            field_trials, dumper.get(), ad_config,
            kAgcAdjacentSpeechFramesThreshold);
        saturation_protector = webrtc::CreateSaturationProtector(
            ad_config.headroom_db, kAgcAdjacentSpeechFramesThreshold,
            dumper.get());
        if (adaptive_enabled) {
            adaptive_ctrl = std::make_unique<webrtc::AdaptiveDigitalGainController>(
                dumper.get(), ad_config, kAgcAdjacentSpeechFramesThreshold);
        }
        limiter = std::make_unique<webrtc::Limiter>(
            dumper.get(), frame_size, "agc2");
        last_gain_db = 0.0f;
        last_speech_probability = 0.0f;
    }

    void process(float* data, int len, int num_channels, float external_speech_prob) {
        // Analyze on channel 0 (mono view of first channel)
        webrtc::DeinterleavedView<const float> const_frame(data, len, 1);

        float speech_probability;
        if (external_speech_prob >= 0.0f && external_speech_prob <= 1.0f) {
            speech_probability = external_speech_prob;
        } else {
            speech_probability = vad->Analyze(const_frame);
        }

        float peak = 0.0f;
        for (int i = 0; i < len; i++)
            peak = std::max(peak, std::abs(data[i]));
        float peak_dbfs = webrtc::FloatS16ToDbfs(std::max(peak, 1.0f));

        last_speech_probability = speech_probability;

        float sum_sq = 0.0f;
        for (int i = 0; i < len; i++)
            sum_sq += data[i] * data[i];
        float rms = std::sqrt(sum_sq / len);
        float rms_dbfs = webrtc::FloatS16ToDbfs(std::max(rms, 1.0f));

        float noise_dbfs = noise_estimator->Analyze(const_frame);
        speech_estimator->Update(rms_dbfs, speech_probability);
        saturation_protector->Analyze(speech_probability, peak_dbfs,
                                      speech_estimator->GetLevelDbfs());

        // Apply gain to all channels
        int total = len * num_channels;
        webrtc::DeinterleavedView<float> frame(data, len, num_channels);

        if (adaptive_enabled) {
            webrtc::AdaptiveDigitalGainController::FrameInfo info;
            info.speech_probability = speech_probability;
            info.speech_level_dbfs = speech_estimator->GetLevelDbfs();
            info.speech_level_reliable = speech_estimator->IsConfident();
            info.noise_rms_dbfs = noise_dbfs;
            info.headroom_db = saturation_protector->HeadroomDb();
            info.limiter_envelope_dbfs =
                webrtc::FloatS16ToDbfs(std::max(limiter->LastAudioLevel(), 1.0f));

            adaptive_ctrl->Process(info, frame);
        }

        fixed_gain_applier.ApplyGain(frame);
        limiter->Process(frame);

        float out_peak = 0.0f;
        for (int i = 0; i < total; i++)
            out_peak = std::max(out_peak, std::abs(data[i]));
        if (peak > 1.0f && out_peak > 1.0f)
            last_gain_db = webrtc::FloatS16ToDbfs(out_peak) -
                           webrtc::FloatS16ToDbfs(peak);
    }
};

// The config's tunable fields by dotted name (the subset the sweep and
// audio_processing.py use; floats, sizes, ints and bools as double).
struct Field {
    const char* name;
    char kind;  // f float, z size_t, i int, b bool
    size_t offset;
};

#define CFG_OFF(member) offsetof(webrtc::EchoCanceller3Config, member)
const Field kFields[] = {
    {"filter.main.length_blocks", 'z', CFG_OFF(filter.main.length_blocks)},
    {"filter.shadow.length_blocks", 'z', CFG_OFF(filter.shadow.length_blocks)},
    {"filter.main_initial.length_blocks", 'z', CFG_OFF(filter.main_initial.length_blocks)},
    {"filter.shadow_initial.length_blocks", 'z', CFG_OFF(filter.shadow_initial.length_blocks)},
    {"filter.initial_state_seconds", 'f', CFG_OFF(filter.initial_state_seconds)},
    {"filter.conservative_initial_phase", 'b', CFG_OFF(filter.conservative_initial_phase)},
    {"erle.min", 'f', CFG_OFF(erle.min)},
    {"erle.max_l", 'f', CFG_OFF(erle.max_l)},
    {"erle.max_h", 'f', CFG_OFF(erle.max_h)},
    {"erle.onset_detection", 'b', CFG_OFF(erle.onset_detection)},
    {"erle.num_sections", 'z', CFG_OFF(erle.num_sections)},
    {"ep_strength.default_gain", 'f', CFG_OFF(ep_strength.default_gain)},
    {"ep_strength.default_len", 'f', CFG_OFF(ep_strength.default_len)},
    {"ep_strength.echo_can_saturate", 'b', CFG_OFF(ep_strength.echo_can_saturate)},
    {"ep_strength.bounded_erl", 'b', CFG_OFF(ep_strength.bounded_erl)},
    {"echo_audibility.audibility_threshold_lf", 'f', CFG_OFF(echo_audibility.audibility_threshold_lf)},
    {"echo_audibility.audibility_threshold_mf", 'f', CFG_OFF(echo_audibility.audibility_threshold_mf)},
    {"echo_audibility.audibility_threshold_hf", 'f', CFG_OFF(echo_audibility.audibility_threshold_hf)},
    {"echo_removal_control.linear_and_stable_echo_path", 'b', CFG_OFF(echo_removal_control.linear_and_stable_echo_path)},
    {"suppressor.nearend_average_blocks", 'z', CFG_OFF(suppressor.nearend_average_blocks)},
    {"suppressor.normal_tuning.mask_lf.enr_transparent", 'f', CFG_OFF(suppressor.normal_tuning.mask_lf.enr_transparent)},
    {"suppressor.normal_tuning.mask_lf.enr_suppress", 'f', CFG_OFF(suppressor.normal_tuning.mask_lf.enr_suppress)},
    {"suppressor.normal_tuning.mask_lf.emr_transparent", 'f', CFG_OFF(suppressor.normal_tuning.mask_lf.emr_transparent)},
    {"suppressor.normal_tuning.mask_hf.enr_transparent", 'f', CFG_OFF(suppressor.normal_tuning.mask_hf.enr_transparent)},
    {"suppressor.normal_tuning.mask_hf.enr_suppress", 'f', CFG_OFF(suppressor.normal_tuning.mask_hf.enr_suppress)},
    {"suppressor.normal_tuning.mask_hf.emr_transparent", 'f', CFG_OFF(suppressor.normal_tuning.mask_hf.emr_transparent)},
    {"suppressor.normal_tuning.max_inc_factor", 'f', CFG_OFF(suppressor.normal_tuning.max_inc_factor)},
    {"suppressor.normal_tuning.max_dec_factor_lf", 'f', CFG_OFF(suppressor.normal_tuning.max_dec_factor_lf)},
    {"suppressor.nearend_tuning.mask_lf.enr_transparent", 'f', CFG_OFF(suppressor.nearend_tuning.mask_lf.enr_transparent)},
    {"suppressor.nearend_tuning.mask_lf.enr_suppress", 'f', CFG_OFF(suppressor.nearend_tuning.mask_lf.enr_suppress)},
    {"suppressor.nearend_tuning.mask_lf.emr_transparent", 'f', CFG_OFF(suppressor.nearend_tuning.mask_lf.emr_transparent)},
    {"suppressor.nearend_tuning.mask_hf.enr_transparent", 'f', CFG_OFF(suppressor.nearend_tuning.mask_hf.enr_transparent)},
    {"suppressor.nearend_tuning.mask_hf.enr_suppress", 'f', CFG_OFF(suppressor.nearend_tuning.mask_hf.enr_suppress)},
    {"suppressor.nearend_tuning.mask_hf.emr_transparent", 'f', CFG_OFF(suppressor.nearend_tuning.mask_hf.emr_transparent)},
    {"suppressor.nearend_tuning.max_inc_factor", 'f', CFG_OFF(suppressor.nearend_tuning.max_inc_factor)},
    {"suppressor.nearend_tuning.max_dec_factor_lf", 'f', CFG_OFF(suppressor.nearend_tuning.max_dec_factor_lf)},
    {"suppressor.dominant_nearend_detection.enr_threshold", 'f', CFG_OFF(suppressor.dominant_nearend_detection.enr_threshold)},
    {"suppressor.dominant_nearend_detection.enr_exit_threshold", 'f', CFG_OFF(suppressor.dominant_nearend_detection.enr_exit_threshold)},
    {"suppressor.dominant_nearend_detection.snr_threshold", 'f', CFG_OFF(suppressor.dominant_nearend_detection.snr_threshold)},
    {"suppressor.dominant_nearend_detection.hold_duration", 'i', CFG_OFF(suppressor.dominant_nearend_detection.hold_duration)},
    {"suppressor.dominant_nearend_detection.trigger_threshold", 'i', CFG_OFF(suppressor.dominant_nearend_detection.trigger_threshold)},
    {"suppressor.dominant_nearend_detection.use_during_initial_phase", 'b', CFG_OFF(suppressor.dominant_nearend_detection.use_during_initial_phase)},
    {"suppressor.use_subband_nearend_detection", 'b', CFG_OFF(suppressor.use_subband_nearend_detection)},
    {"suppressor.high_bands_suppression.enr_threshold", 'f', CFG_OFF(suppressor.high_bands_suppression.enr_threshold)},
    {"suppressor.high_bands_suppression.max_gain_during_echo", 'f', CFG_OFF(suppressor.high_bands_suppression.max_gain_during_echo)},
    {"suppressor.floor_first_increase", 'f', CFG_OFF(suppressor.floor_first_increase)},
};
#undef CFG_OFF

class Processor {
  public:
    Processor(const webrtc::EchoCanceller3Config& config, int sample_rate, bool aec, bool ns,
              bool agc, int ns_level, float agc_max_gain_db)
        : rate_(sample_rate), frame_(sample_rate / 100), aec_on_(aec), agc_on_(agc) {
        near_ = std::make_unique<webrtc::AudioBuffer>(rate_, 1, rate_, 1, rate_, 1);
        if (aec) {
            webrtc::EchoCanceller3Factory factory(config);
            aec_ = factory.Create(rate_, 1, 1);
            far_ = std::make_unique<webrtc::AudioBuffer>(rate_, 1, rate_, 1, rate_, 1);
        }
        hpf_ = std::make_unique<webrtc::HighPassFilter>(rate_, 1);
        webrtc::NsConfig ns_config;
        if (ns) {
            ns_config.target_level = static_cast<webrtc::NsConfig::SuppressionLevel>(ns_level);
            ns_ = std::make_unique<webrtc::NoiseSuppressor>(ns_config, rate_, 1);
        }
        if (agc)
            agc_ = std::make_unique<Agc2State>(0.0f, true, agc_max_gain_db, 5.0f, 6.0f, -50.0f,
                                               rate_, frame_);
        if (!ns && !agc)
            vad_ = std::make_unique<webrtc::NoiseSuppressor>(webrtc::NsConfig(), rate_, 1);
    }

    // One 10 ms frame (the binding's AudioProcessor::process_buffers, same order).
    void process(const int16_t* near, const int16_t* far, int16_t* out) {
        webrtc::AudioFrame near_frame;
        near_frame.UpdateFrame(0, near, frame_, rate_, webrtc::AudioFrame::kNormalSpeech,
                               webrtc::AudioFrame::kVadActive, 1);
        near_->CopyFrom(&near_frame);
        if (aec_on_) {
            webrtc::AudioFrame far_frame;
            far_frame.UpdateFrame(0, far, frame_, rate_, webrtc::AudioFrame::kNormalSpeech,
                                  webrtc::AudioFrame::kVadActive, 1);
            far_->CopyFrom(&far_frame);
            far_->SplitIntoFrequencyBands();
            aec_->AnalyzeRender(far_.get());
            aec_->AnalyzeCapture(near_.get());
        }
        if (ns_) ns_->Analyze(*near_);
        if (vad_) vad_->Analyze(*near_);
        near_->SplitIntoFrequencyBands();
        hpf_->Process(near_.get(), true);
        if (aec_on_) {
            aec_->SetAudioBufferDelay(0);
            aec_->ProcessCapture(near_.get(), nullptr, false);
        }
        if (ns_) ns_->Process(near_.get());
        near_->MergeFrequencyBands();
        if (agc_on_)
            agc_->process(near_->channels()[0], frame_, 1,
                          ns_ ? ns_->GetSpeechProbability() : -1.0f);
        near_->CopyTo(&near_frame);
        std::memcpy(out, near_frame.data(), frame_ * sizeof(int16_t));
    }

    float speech_probability() const {
        if (ns_) return ns_->GetSpeechProbability();
        if (agc_) return agc_->last_speech_probability;
        return vad_->GetSpeechProbability();
    }
    float gain_db() const { return agc_ ? agc_->last_gain_db : 0.0f; }
    int frame() const { return frame_; }

  private:
    int rate_, frame_;
    bool aec_on_, agc_on_;
    std::unique_ptr<webrtc::AudioBuffer> near_, far_;
    std::unique_ptr<webrtc::EchoControl> aec_;
    std::unique_ptr<webrtc::HighPassFilter> hpf_;
    std::unique_ptr<webrtc::NoiseSuppressor> ns_, vad_;
    std::unique_ptr<Agc2State> agc_;
};

}  // namespace

extern "C" {

// The pywebrtc-audio version whose headers this was compiled against.
const char* aec3_shim_abi() { return "pywebrtc-audio 0.2.0"; }

void* aec3_config_new() { return new webrtc::EchoCanceller3Config(); }
void aec3_config_free(void* config) { delete static_cast<webrtc::EchoCanceller3Config*>(config); }

// Set one field by its dotted name; 0 on success, -1 for an unknown name.
int aec3_config_set(void* config, const char* name, double value) {
    char* base = static_cast<char*>(config);
    for (const Field& f : kFields) {
        if (std::strcmp(f.name, name) != 0) continue;
        switch (f.kind) {
            case 'f': *reinterpret_cast<float*>(base + f.offset) = static_cast<float>(value); break;
            case 'z': *reinterpret_cast<size_t*>(base + f.offset) = static_cast<size_t>(value); break;
            case 'i': *reinterpret_cast<int*>(base + f.offset) = static_cast<int>(value); break;
            default: *reinterpret_cast<bool*>(base + f.offset) = value != 0.0; break;
        }
        return 0;
    }
    return -1;
}

// Read one field back (NaN for an unknown name): the ABI test compares the defaults.
double aec3_config_get(void* config, const char* name) {
    const char* base = static_cast<const char*>(config);
    for (const Field& f : kFields) {
        if (std::strcmp(f.name, name) != 0) continue;
        switch (f.kind) {
            case 'f': return *reinterpret_cast<const float*>(base + f.offset);
            case 'z': return static_cast<double>(*reinterpret_cast<const size_t*>(base + f.offset));
            case 'i': return *reinterpret_cast<const int*>(base + f.offset);
            default: return *reinterpret_cast<const bool*>(base + f.offset) ? 1.0 : 0.0;
        }
    }
    return __builtin_nan("");
}

// 1 when AEC3 accepts the config unchanged (Validate clamps what is out of range).
int aec3_config_valid(void* config) {
    return webrtc::EchoCanceller3Config::Validate(static_cast<webrtc::EchoCanceller3Config*>(config));
}

void* aec3_create(void* config, int sample_rate, int aec, int ns, int agc, int ns_level,
                  float agc_max_gain_db) {
    try {
        return new Processor(*static_cast<webrtc::EchoCanceller3Config*>(config), sample_rate,
                             aec != 0, ns != 0, agc != 0, ns_level, agc_max_gain_db);
    } catch (...) {
        return nullptr;
    }
}

// `frames` 10 ms frames of int16 mono (far may be null without AEC).
void aec3_process(void* processor, const int16_t* near, const int16_t* far, int16_t* out,
                  int frames) {
    auto* p = static_cast<Processor*>(processor);
    const int step = p->frame();
    for (int i = 0; i < frames; i++, near += step, out += step) {
        p->process(near, far, out);
        if (far) far += step;
    }
}

float aec3_speech_probability(void* processor) {
    return static_cast<Processor*>(processor)->speech_probability();
}
float aec3_gain_db(void* processor) { return static_cast<Processor*>(processor)->gain_db(); }
void aec3_destroy(void* processor) { delete static_cast<Processor*>(processor); }

}  // extern "C"
