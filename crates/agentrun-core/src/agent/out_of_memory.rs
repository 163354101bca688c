//! A model the server could not fit in memory: what frees room for it, and what to say when
//! nothing does.

use crate::backend::{BackendError, ModelBackend};

/// Whether a failed call is a model that did not fit in memory.
pub(crate) fn is_out_of_memory(error: &BackendError) -> bool {
    matches!(error, BackendError::OutOfMemory { .. })
}

/// Asks the server to unload every resident model but `keep`, reading what is
/// resident from the server itself; returns the models it asked to unload.
///
/// A model that cannot be unloaded, or a server that cannot list its models, leaves
/// less room but is no reason to give up: the retry will tell.
pub(crate) async fn free_memory_for(backend: &dyn ModelBackend, keep: &str) -> Vec<String> {
    let resident = match backend.running_models().await {
        Ok(resident) => resident,
        Err(error) => {
            tracing::warn!(%error, "cannot list resident models to free memory");
            return Vec::new();
        }
    };
    let mut unloaded = Vec::new();
    for model in resident.into_iter().filter(|model| model.name != keep) {
        match backend.unload(&model.name).await {
            Ok(()) => unloaded.push(model.name),
            Err(error) => {
                tracing::warn!(model = %model.name, %error, "unload to free memory failed")
            }
        }
    }
    unloaded
}

/// The error that ends a turn when freeing memory and the fallback did not help: the
/// server's words and what the workflow can change.
pub(crate) fn explained(error: BackendError, agent: &str, fallback: Option<&str>) -> BackendError {
    let BackendError::OutOfMemory {
        model,
        status,
        message,
    } = error
    else {
        return error;
    };
    let advice = match fallback {
        Some(fallback) => format!(
            "unloading the other models did not help and neither did the fallback model \
             '{fallback}'; lower agent '{agent}''s num_ctx or name a smaller `fallback`"
        ),
        None => format!(
            "unloading the other models did not help; give agent '{agent}' a `fallback` \
             model (for example a smaller quantization) or lower its num_ctx"
        ),
    };
    BackendError::OutOfMemory {
        model,
        status,
        message: format!("{message}; {advice}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(message: &str) -> BackendError {
        BackendError::server_failure("big".into(), 500, message.into())
    }

    #[test]
    fn ollamas_memory_refusal_is_out_of_memory_and_other_failures_are_not() {
        assert!(is_out_of_memory(&server(
            "model requires more system memory (40.0 GiB) than is available (12.5 GiB)"
        )));
        assert!(is_out_of_memory(&server("CUDA error: out of memory")));
        assert!(!is_out_of_memory(&server(
            "llama runner process has terminated"
        )));
        assert!(!is_out_of_memory(&BackendError::Busy {
            message: "out of memory".into()
        }));
    }

    #[test]
    fn the_explanation_keeps_the_servers_words_and_says_what_to_change() {
        let plain = explained(server("out of memory"), "coder", None).to_string();
        assert!(plain.contains("out of memory"), "{plain}");
        assert!(plain.contains("give agent 'coder' a `fallback`"), "{plain}");
        let with = explained(server("out of memory"), "coder", Some("small")).to_string();
        assert!(with.contains("fallback model 'small'"), "{with}");
    }
}
