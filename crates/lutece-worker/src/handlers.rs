//! The worker's HTTP handlers.

use std::sync::Arc;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use lutece_api::openai::{
    AssistantMessage, ChatChoice, ChatCompletion, ChatCompletionChunk, ChatCompletionRequest,
    ChunkChoice, Completion, CompletionChoice, CompletionRequest, Delta, ErrorResponse, Model,
    ModelList, Prompt, Usage,
};
use lutece_engine::{ChatMessage, Engine, Event};
use lutece_gateway::body::refuse_unknown;
use lutece_gateway::{OpenAiError, OpenAiJson, sse};
use tokio::sync::mpsc;
use tokio::sync::mpsc::UnboundedReceiver;

use crate::Worker;
use crate::generate::{self, Finished, finish_reason, new_id, total_usage};

/// Mistral's `safe_prompt` system message, as its API documents it.
const MISTRAL_SAFE_PROMPT: &str = "Always assist with care, respect, and truth. Respond with utmost utility yet securely. Avoid harmful, unethical, prejudiced, or negative content. Ensure replies promote fairness and positivity.";

pub(crate) async fn health(State(worker): State<Arc<Worker>>) -> Json<serde_json::Value> {
    // What this worker can do beyond OpenAI's API: the gateway asks for usage so far only
    // from workers that say so (one started by an older lutece refuses the option).
    Json(serde_json::json!({
        "status": "ok",
        "model": worker.model_id,
        "continuous_usage_stats": true,
    }))
}

pub(crate) async fn models(State(worker): State<Arc<Worker>>) -> Json<ModelList> {
    Json(ModelList {
        object: "list".into(),
        data: vec![model_card(&worker)],
    })
}

fn model_card(worker: &Worker) -> Model {
    Model::new(&worker.model_id, worker.created)
}

pub(crate) fn check_model(worker: &Worker, model: &str) -> Result<(), OpenAiError> {
    if model == worker.model_id {
        Ok(())
    } else {
        Err(OpenAiError::model_not_found(model))
    }
}

/// The generation engine; an embedding model cannot complete text.
fn generator(worker: &Worker) -> Result<&Engine, OpenAiError> {
    worker.engine().ok_or_else(|| {
        OpenAiError::invalid_param(
            "model",
            format!(
                "model {} is an embedding model: it serves /v1/embeddings, not completions",
                worker.model_id
            ),
        )
    })
}

pub(crate) async fn chat(
    State(worker): State<Arc<Worker>>,
    OpenAiJson(request): OpenAiJson<ChatCompletionRequest>,
) -> Result<Response, OpenAiError> {
    refuse_unknown(&request.unknown)?;
    check_model(&worker, &request.model)?;
    let engine = generator(&worker)?;
    if request
        .tools
        .as_ref()
        .is_some_and(|t| t.as_array().is_none_or(|a| !a.is_empty()))
    {
        return Err(OpenAiError::invalid_param(
            "tools",
            "this model does not support tool calls",
        ));
    }
    if request.logprobs == Some(true) {
        return Err(OpenAiError::invalid_param(
            "logprobs",
            "logprobs are not supported yet",
        ));
    }
    let messages = conversation(&request)?;
    let prompt = engine
        .chat_prompt(&messages)
        .map_err(generate::engine_error)?;
    let tokens = engine.tokenize(&prompt);
    let prompt_tokens = tokens.len() as u64;
    let max_tokens = request.max_completion_tokens.or(request.max_tokens);
    let requests = generate::requests(&request.sampling, max_tokens, tokens)?;
    let receivers = generate::start(engine, requests)?;
    let id = new_id("chatcmpl");
    let created = crate::unix_now();
    if request.sampling.wants_stream() {
        let chunk = ChunkMaker {
            id,
            created,
            model: request.model,
            chat: true,
        };
        let usage = StreamUsage {
            prompt_tokens,
            last_chunk: request.sampling.wants_usage_chunk(),
            running: request.sampling.wants_running_usage(),
        };
        return Ok(stream(chunk, receivers, usage));
    }
    let finished = collect_all(receivers).await?;
    let usage = total_usage(prompt_tokens, finished.iter().map(|f| f.usage));
    let choices = finished
        .into_iter()
        .zip(0..)
        .map(|(f, index)| ChatChoice {
            index,
            message: AssistantMessage {
                role: "assistant".into(),
                content: f.text,
            },
            finish_reason: finish_reason(f.reason).into(),
            logprobs: None,
        })
        .collect();
    let body = ChatCompletion {
        id,
        object: "chat.completion".into(),
        created,
        model: request.model,
        choices,
        usage,
    };
    Ok(Json(body).into_response())
}

/// The conversation as the chat template takes it.
fn conversation(request: &ChatCompletionRequest) -> Result<Vec<ChatMessage>, OpenAiError> {
    if request.messages.is_empty() {
        return Err(OpenAiError::invalid_param(
            "messages",
            "'messages' must contain at least one message",
        ));
    }
    let mut messages = Vec::with_capacity(request.messages.len() + 1);
    if request.safe_prompt == Some(true) {
        messages.push(ChatMessage::new("system", MISTRAL_SAFE_PROMPT));
    }
    for (i, m) in request.messages.iter().enumerate() {
        let role = match m.role.as_str() {
            "system" | "developer" => "system",
            "user" | "assistant" | "tool" => m.role.as_str(),
            other => {
                return Err(OpenAiError::invalid_param(
                    &format!("messages[{i}].role"),
                    format!(
                        "'{other}' is not a valid role: expected system, developer, user, assistant or tool"
                    ),
                ));
            }
        };
        let content = match &m.content {
            None => String::new(),
            Some(content) => content.text().ok_or_else(|| {
                OpenAiError::invalid_param(
                    &format!("messages[{i}].content"),
                    "this model reads text only",
                )
            })?,
        };
        messages.push(ChatMessage::new(role, content));
    }
    Ok(messages)
}

pub(crate) async fn completions(
    State(worker): State<Arc<Worker>>,
    OpenAiJson(request): OpenAiJson<CompletionRequest>,
) -> Result<Response, OpenAiError> {
    refuse_unknown(&request.unknown)?;
    check_model(&worker, &request.model)?;
    let engine = generator(&worker)?;
    if request.suffix.as_deref().is_some_and(|s| !s.is_empty()) {
        return Err(OpenAiError::invalid_param(
            "suffix",
            "'suffix' is not supported by this model",
        ));
    }
    if request.logprobs.is_some() {
        return Err(OpenAiError::invalid_param(
            "logprobs",
            "logprobs are not supported yet",
        ));
    }
    let prompts = match &request.prompt {
        Prompt::One(p) => vec![p.clone()],
        Prompt::Many(ps) => ps.clone(),
    };
    let echo = request.echo == Some(true);
    let mut receivers = Vec::new();
    let mut prompt_tokens = 0u64;
    for prompt in &prompts {
        let tokens = engine.tokenize(prompt);
        prompt_tokens += tokens.len() as u64;
        let requests =
            generate::requests(&request.sampling, request.max_tokens.or(Some(16)), tokens)?;
        receivers.extend(requests.into_iter().map(|r| (prompt.clone(), r)));
    }
    let (texts, requests): (Vec<String>, Vec<_>) = receivers.into_iter().unzip();
    let receivers = generate::start(engine, requests)?;
    let id = new_id("cmpl");
    let created = crate::unix_now();
    if request.sampling.wants_stream() {
        let chunk = ChunkMaker {
            id,
            created,
            model: request.model,
            chat: false,
        };
        let usage = StreamUsage {
            prompt_tokens,
            last_chunk: request.sampling.wants_usage_chunk(),
            running: request.sampling.wants_running_usage(),
        };
        return Ok(stream(chunk, receivers, usage));
    }
    let finished = collect_all(receivers).await?;
    let usage = total_usage(prompt_tokens, finished.iter().map(|f| f.usage));
    let choices = finished
        .into_iter()
        .zip(texts)
        .zip(0..)
        .map(|((f, prompt), index)| CompletionChoice {
            index,
            text: if echo { prompt + &f.text } else { f.text },
            finish_reason: Some(finish_reason(f.reason).into()),
            logprobs: None,
        })
        .collect();
    let body = Completion {
        id,
        object: "text_completion".into(),
        created,
        model: request.model,
        choices,
        usage: Some(usage),
    };
    Ok(Json(body).into_response())
}

async fn collect_all(
    receivers: Vec<UnboundedReceiver<Event>>,
) -> Result<Vec<Finished>, OpenAiError> {
    let all = futures_util::future::join_all(receivers.into_iter().map(generate::collect)).await;
    all.into_iter().collect()
}

/// Builds the chunks of one streamed response.
struct ChunkMaker {
    id: String,
    created: u64,
    model: String,
    chat: bool,
}

impl ChunkMaker {
    /// A chunk for choice `index`: a delta of text and, at the end, the finish reason; with the
    /// usage so far when it is asked for.
    fn choice(
        &self,
        index: u32,
        role: bool,
        text: Option<String>,
        finish: Option<&str>,
        usage: Option<Usage>,
    ) -> Bytes {
        if self.chat {
            sse::event(&ChatCompletionChunk {
                id: self.id.clone(),
                object: "chat.completion.chunk".into(),
                created: self.created,
                model: self.model.clone(),
                choices: vec![ChunkChoice {
                    index,
                    delta: Delta {
                        role: role.then(|| "assistant".into()),
                        content: text,
                    },
                    finish_reason: finish.map(Into::into),
                    logprobs: None,
                }],
                usage,
            })
        } else {
            sse::event(&Completion {
                id: self.id.clone(),
                object: "text_completion".into(),
                created: self.created,
                model: self.model.clone(),
                choices: vec![CompletionChoice {
                    index,
                    text: text.unwrap_or_default(),
                    finish_reason: finish.map(Into::into),
                    logprobs: None,
                }],
                usage,
            })
        }
    }

    /// The last chunk, with usage and no choices (`stream_options.include_usage`).
    fn usage(&self, usage: Usage) -> Bytes {
        if self.chat {
            sse::event(&ChatCompletionChunk {
                id: self.id.clone(),
                object: "chat.completion.chunk".into(),
                created: self.created,
                model: self.model.clone(),
                choices: Vec::new(),
                usage: Some(usage),
            })
        } else {
            sse::event(&Completion {
                id: self.id.clone(),
                object: "text_completion".into(),
                created: self.created,
                model: self.model.clone(),
                choices: Vec::new(),
                usage: Some(usage),
            })
        }
    }
}

/// Which usage a stream reports.
struct StreamUsage {
    prompt_tokens: u64,
    /// A last chunk with the whole usage (`include_usage`).
    last_chunk: bool,
    /// The usage so far in every chunk (`continuous_usage_stats`).
    running: bool,
}

/// Streams every choice's tokens as they come, in OpenAI's framing. A client that goes away
/// drops the body, which drops the engine receivers, which cancels the generations.
fn stream(
    maker: ChunkMaker,
    receivers: Vec<UnboundedReceiver<Event>>,
    usage: StreamUsage,
) -> Response {
    let (tx, rx) = mpsc::channel::<Result<Bytes, std::convert::Infallible>>(64);
    let choices = receivers.len();
    tokio::spawn(async move {
        let mut merged = futures_util::stream::select_all(
            receivers
                .into_iter()
                .zip(0u32..)
                .map(|(r, i)| Box::pin(receiver_stream(r).map(move |e| (i, e)))),
        );
        // Tokens generated so far, all choices together.
        let mut generated = 0u64;
        let so_far = |generated: u64| {
            usage
                .running
                .then(|| Usage::new(usage.prompt_tokens, generated))
        };
        if maker.chat {
            for index in 0..choices {
                let first = maker.choice(
                    u32::try_from(index).unwrap_or(0),
                    true,
                    Some(String::new()),
                    None,
                    so_far(0),
                );
                if tx.send(Ok(first)).await.is_err() {
                    return;
                }
            }
        }
        let mut completion_tokens = 0u64;
        let mut done = 0;
        while let Some((index, event)) = merged.next().await {
            let bytes = match event {
                Event::Token { id, text } => {
                    // Id -1 is text held back until the end, not a token.
                    if id >= 0 {
                        generated += 1;
                    }
                    if text.is_empty() {
                        continue;
                    }
                    maker.choice(index, false, Some(text), None, so_far(generated))
                }
                Event::Done {
                    reason,
                    usage: used,
                } => {
                    done += 1;
                    completion_tokens += u64::from(used.completion_tokens);
                    let text = (!maker.chat).then(String::new);
                    let reason = Some(finish_reason(reason));
                    maker.choice(index, false, text, reason, so_far(generated))
                }
                Event::Failed(message) => {
                    let error = ErrorResponse::new("server_error", message);
                    let _ = tx.send(Ok(sse::event(&error))).await;
                    return;
                }
            };
            if tx.send(Ok(bytes)).await.is_err() {
                return;
            }
        }
        if done < choices {
            let error = ErrorResponse::new("server_error", "the engine stopped mid-answer");
            let _ = tx.send(Ok(sse::event(&error))).await;
            return;
        }
        if usage.last_chunk {
            let usage = Usage::new(usage.prompt_tokens, completion_tokens);
            if tx.send(Ok(maker.usage(usage))).await.is_err() {
                return;
            }
        }
        let _ = tx.send(Ok(Bytes::from_static(sse::DONE))).await;
    });
    let body =
        futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|b| (b, rx)) });
    sse::response(Body::from_stream(body))
}

fn receiver_stream<T>(rx: UnboundedReceiver<T>) -> impl futures_util::Stream<Item = T> {
    futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|v| (v, rx)) })
}
