//! What a model can do, as the catalog's `supports_*` flags say it and as a model stores it.

use std::fmt;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A capability of a model. The set is closed: a model's `capabilities` hold only these, and
/// the catalog's `supports_<name>` flag sets the one of the same name (flags outside the set are
/// not read).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Capability {
    Vision,
    FunctionCalling,
    ParallelFunctionCalling,
    ToolChoice,
    ResponseSchema,
    Reasoning,
    PromptCaching,
    AudioInput,
    AudioOutput,
    PdfInput,
    VideoInput,
    WebSearch,
    ComputerUse,
    SystemMessages,
    AssistantPrefill,
}

impl Capability {
    pub const ALL: [Capability; 15] = [
        Capability::Vision,
        Capability::FunctionCalling,
        Capability::ParallelFunctionCalling,
        Capability::ToolChoice,
        Capability::ResponseSchema,
        Capability::Reasoning,
        Capability::PromptCaching,
        Capability::AudioInput,
        Capability::AudioOutput,
        Capability::PdfInput,
        Capability::VideoInput,
        Capability::WebSearch,
        Capability::ComputerUse,
        Capability::SystemMessages,
        Capability::AssistantPrefill,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Capability::Vision => "vision",
            Capability::FunctionCalling => "function_calling",
            Capability::ParallelFunctionCalling => "parallel_function_calling",
            Capability::ToolChoice => "tool_choice",
            Capability::ResponseSchema => "response_schema",
            Capability::Reasoning => "reasoning",
            Capability::PromptCaching => "prompt_caching",
            Capability::AudioInput => "audio_input",
            Capability::AudioOutput => "audio_output",
            Capability::PdfInput => "pdf_input",
            Capability::VideoInput => "video_input",
            Capability::WebSearch => "web_search",
            Capability::ComputerUse => "computer_use",
            Capability::SystemMessages => "system_messages",
            Capability::AssistantPrefill => "assistant_prefill",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_serde_and_parse() {
        for c in Capability::ALL {
            let json = serde_json::to_string(&c).unwrap();
            assert_eq!(json, format!("\"{}\"", c.as_str()));
            assert_eq!(Capability::parse(c.as_str()), Some(c));
        }
        assert_eq!(Capability::parse("telepathy"), None);
    }
}
