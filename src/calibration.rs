//! Calibration: each model's measured load time per load mode on a server, kept on disk.
//!
//! Plans and simulations start from estimates (a fixed cost plus the file size
//! over a typical bandwidth); `agentrun calibrate` replaces them with this
//! machine's figures. Ollama loads with mmap by default, and on Apple Silicon
//! `use_mmap: false` reads several times faster, so both modes are measured.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use agentrun_core::{
    BackendError, ChatRequest, DecodeSamples, KeepAlive, LoadTimes, Message, ModelBackend,
    ModelDetails, ModelOptions,
};
use serde::{Deserialize, Serialize};

/// Tokens each measuring request asks for: enough to time generation, little enough to keep
/// calibration quick.
const PROBE_TOKENS: u64 = 32;

/// Fewer generated tokens than this say too little about the decode speed to keep it.
const MIN_DECODE_TOKENS: u64 = 8;

/// How long a measured model stays loaded after its request, so `/api/ps` can be read.
const RESIDENT_WHILE_MEASURED: Duration = Duration::from_secs(60);

/// How long to wait for a model to leave the server after an unload request.
const UNLOAD_WAIT: Duration = Duration::from_secs(120);

/// Measured load times, per server and model.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    /// By server address, then by model name.
    pub servers: BTreeMap<String, BTreeMap<String, ModelCalibration>>,
}

/// One model's measured load times.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelCalibration {
    /// Seconds to load with Ollama's default memory-mapped reading.
    pub mmap_s: f64,
    /// Seconds to load with `use_mmap: false`.
    pub no_mmap_s: f64,
    /// The weights' size, so a re-pulled model of another size is measured again.
    pub file_bytes: u64,
    /// Tokens generated and seconds of generation while measuring, for the decode speed that
    /// the planner's turn-length priors use; absent in files from older versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decode: Option<DecodeSamples>,
    /// When the model did not fit the GPU alone: the bytes of it the server put in GPU
    /// memory (`/api/ps` `size_vram`), which is as much as that GPU holds. Absent when it
    /// fitted, and in files from older versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spilled_vram_bytes: Option<u64>,
    /// When it was measured (RFC 3339).
    pub measured_at: String,
}

/// Why calibration failed.
#[derive(Debug, thiserror::Error)]
pub enum CalibrationError {
    /// The calibration file could not be read or written.
    #[error("{path}: {source}")]
    File {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        source: std::io::Error,
    },
    /// The calibration file is not valid JSON of the expected shape.
    #[error("{path} is not a calibration file: {source}; delete it and calibrate again")]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        source: serde_json::Error,
    },
    /// The server failed.
    #[error(transparent)]
    Backend(#[from] BackendError),
    /// The model did not leave the server after an unload request.
    #[error(
        "'{model}' was still loaded {} after it was asked to unload",
        humantime::format_duration(UNLOAD_WAIT)
    )]
    StillLoaded {
        /// The model.
        model: String,
    },
}

impl Calibration {
    /// Where calibration is kept: `$AGENTRUN_HOME/calibration.json`, by default
    /// `~/.agentrun/calibration.json`.
    pub fn default_path() -> PathBuf {
        agentrun_home().join("calibration.json")
    }

    /// Reads a calibration file; a missing file is an empty calibration.
    pub fn load(path: &Path) -> Result<Calibration, CalibrationError> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Calibration::default());
            }
            Err(source) => {
                return Err(CalibrationError::File {
                    path: path.to_owned(),
                    source,
                });
            }
        };
        serde_json::from_str(&text).map_err(|source| CalibrationError::Format {
            path: path.to_owned(),
            source,
        })
    }

    /// Writes the calibration file, creating its folder.
    pub fn save(&self, path: &Path) -> Result<(), CalibrationError> {
        let file_error = |source| CalibrationError::File {
            path: path.to_owned(),
            source,
        };
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(file_error)?;
        }
        let text = serde_json::to_string_pretty(self).expect("calibration serializes");
        std::fs::write(path, text + "\n").map_err(file_error)
    }

    /// The measured figures for a server's models.
    pub fn for_server(&self, server: &str) -> BTreeMap<String, ModelCalibration> {
        self.servers.get(server).cloned().unwrap_or_default()
    }

    /// The figures measured on `server` for models whose weights are still the size they
    /// were when measured (a re-pulled model is measured anew).
    fn still_current<'a>(
        &self,
        server: &str,
        details: &'a BTreeMap<String, ModelDetails>,
    ) -> impl Iterator<Item = (String, ModelCalibration)> + 'a {
        self.for_server(server)
            .into_iter()
            .filter(|(model, measured)| {
                details
                    .get(model)
                    .is_some_and(|d| d.file_bytes == measured.file_bytes)
            })
    }

    /// Measured decode speeds, for the models whose weights are still the size they were
    /// when measured.
    pub fn decode(
        &self,
        server: &str,
        details: &BTreeMap<String, ModelDetails>,
    ) -> BTreeMap<String, DecodeSamples> {
        self.still_current(server, details)
            .filter_map(|(model, measured)| Some((model, measured.decode?)))
            .collect()
    }

    /// The GPU memory calibration saw on `server`: the most any model that spilled past it
    /// had in GPU memory. `None` when every model fitted.
    pub fn gpu_budget(&self, server: &str) -> Option<u64> {
        self.servers
            .get(server)?
            .values()
            .filter_map(|measured| measured.spilled_vram_bytes)
            .max()
    }

    /// The load times measured on the server `backend` reaches, for the models it still
    /// has with weights of the size they were when measured: a host's own speeds, for
    /// placement. A model the server no longer lists is left out.
    pub async fn current_load_times(&self, backend: &dyn ModelBackend) -> Vec<(String, LoadTimes)> {
        let mut current = Vec::new();
        for (model, measured) in self.for_server(&backend.endpoint()) {
            let Ok(details) = backend.model_details(&model).await else {
                continue;
            };
            if details.file_bytes == measured.file_bytes {
                let times = LoadTimes {
                    mmap_seconds: measured.mmap_s,
                    no_mmap_seconds: measured.no_mmap_s,
                };
                current.push((model, times));
            }
        }
        current
    }

    /// Measured load times for the planner, for the models whose weights are
    /// still the size they were when measured.
    pub fn load_times(
        &self,
        server: &str,
        details: &BTreeMap<String, ModelDetails>,
    ) -> BTreeMap<String, LoadTimes> {
        self.still_current(server, details)
            .map(|(model, measured)| {
                let times = LoadTimes {
                    mmap_seconds: measured.mmap_s,
                    no_mmap_seconds: measured.no_mmap_s,
                };
                (model, times)
            })
            .collect()
    }
}

/// Where agentrun keeps what it learns about this machine: `$AGENTRUN_HOME`, by default
/// `~/.agentrun`.
pub(crate) fn agentrun_home() -> PathBuf {
    std::env::var_os("AGENTRUN_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".agentrun")))
        .unwrap_or_else(|| PathBuf::from(".agentrun"))
}

/// Measures one model's load time in both modes, and its decode speed, with short requests.
///
/// The model is unloaded before each measurement. `load_options` are the
/// load-time options the workflow sends (num_ctx, ...), since they change the
/// footprint and so the load. The second load may find the file in the OS page
/// cache: figures are what this machine does now, not a cold-start guarantee.
pub async fn calibrate_model(
    backend: &dyn ModelBackend,
    model: &str,
    file_bytes: u64,
    load_options: &ModelOptions,
) -> Result<ModelCalibration, CalibrationError> {
    let mut mmap_options = load_options.clone();
    mmap_options.remove("use_mmap");
    let mut no_mmap_options = mmap_options.clone();
    no_mmap_options.insert("use_mmap".into(), false.into());
    let (mmap_s, first, spilled) = measure_load(backend, model, mmap_options).await?;
    let (no_mmap_s, second, _) = measure_load(backend, model, no_mmap_options).await?;
    let generated = DecodeSamples {
        tokens: first.tokens + second.tokens,
        seconds: first.seconds + second.seconds,
    };
    Ok(ModelCalibration {
        mmap_s,
        no_mmap_s,
        file_bytes,
        decode: (generated.tokens >= MIN_DECODE_TOKENS && generated.seconds > 0.0)
            .then_some(generated),
        spilled_vram_bytes: spilled,
        measured_at: jiff::Timestamp::now().to_string(),
    })
}

/// One load from cold: its seconds, the tokens generated in how long, and when the model
/// did not fit the GPU alone, the bytes of it in GPU memory.
async fn measure_load(
    backend: &dyn ModelBackend,
    model: &str,
    mut options: ModelOptions,
) -> Result<(f64, DecodeSamples, Option<u64>), CalibrationError> {
    unload_and_wait(backend, model).await?;
    options.insert("num_predict".into(), PROBE_TOKENS.into());
    let request = ChatRequest {
        model: model.to_owned(),
        messages: vec![Message::user("Hi")],
        options,
        // Kept loaded for a moment so `/api/ps` shows where it went; unloaded right after.
        keep_alive: Some(KeepAlive::For(RESIDENT_WHILE_MEASURED)),
        format: None,
        tools: Vec::new(),
        think: Some(agentrun_core::Think::Enabled(false)),
    };
    let response = backend.chat(&request, &mut |_| {}).await?;
    let metrics = &response.metrics;
    let load = metrics.load.unwrap_or_default();
    let generated = DecodeSamples {
        tokens: metrics.eval_count.unwrap_or_default(),
        seconds: metrics.eval.unwrap_or_default().as_secs_f64(),
    };
    let spilled = backend
        .running_models()
        .await?
        .into_iter()
        .find(|running| running.name == model)
        .filter(|running| {
            running.size_vram_bytes > 0 && running.size_vram_bytes < running.size_bytes
        })
        .map(|running| running.size_vram_bytes);
    unload_and_wait(backend, model).await?;
    Ok((load.as_secs_f64(), generated, spilled))
}

async fn unload_and_wait(backend: &dyn ModelBackend, model: &str) -> Result<(), CalibrationError> {
    backend.unload(model).await?;
    let deadline = tokio::time::Instant::now() + UNLOAD_WAIT;
    loop {
        let resident = backend.running_models().await?;
        if !resident.iter().any(|running| running.name == model) {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(CalibrationError::StillLoaded {
                model: model.to_owned(),
            });
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
