"""The five Kling models, one spec each, written from their Runware pages.

Each spec follows its page in ``shared/seeds`` (see that folder's README for the
file of each model and for what two captures lost). Published sentences are
quoted verbatim in ``published``; where the examples on the same page show the
service accepting a request that sentence would reject, the examples win, and
``reading`` says how the sentence was read instead.
"""

from __future__ import annotations

from decimal import Decimal

from ._spec import (
    AtLeastOne,
    Dimensions,
    DurationWhen,
    ElementReferences,
    ElementsSpec,
    Excludes,
    ExactlyOne,
    Field,
    FrameImagesSpec,
    IntRange,
    MaxItemsWhen,
    ModelSpec,
    MultiPromptSpec,
    Pricing,
    Requires,
)

F = Field

DIMENSIONS_720P = (
    Dimensions(1280, 720, "16:9", "720p (16:9)"),
    Dimensions(960, 960, "1:1", "960p (1:1)"),
    Dimensions(720, 1280, "9:16", "720p (9:16)"),
)
DIMENSIONS_1080P = (
    Dimensions(1920, 1080, "16:9", "1080p (16:9)"),
    Dimensions(1440, 1440, "1:1", "1080p (1:1)"),
    Dimensions(1080, 1920, "9:16", "1080p (9:16)"),
)

# -- Readings shared by several pages -------------------------------------------

SOURCE_VIDEO_SETS_DURATION = (
    "Every page says of inputs.video: 'Dimensions and duration match the input video'. "
    "A duration sent with a source video would be ignored, so it is refused rather than "
    "silently dropped (O3 Pro's page states the rule outright); every video-edit example "
    "omits duration."
)
SOURCE_VIDEO_SETS_SIZE = (
    "The video-edit examples send inputs.video with neither frameImages nor width/height: "
    "a source video sets the output size, so it counts as one of the options "
    "(O3 Pro's page lists it as such)."
)
PER_SETTING_CANNOT = (
    "Read per setting, not for the whole providerSettings object: taken literally it "
    "contradicts the page's own rule that requires providerSettings with these inputs, and "
    "keepOriginalSound only makes sense with a video. The generation settings (sound, "
    "multiPrompt, shotType) are the ones refused with a video input; the price table has no "
    "rate for audio with a video input."
)
PER_SETTING_REQUIRED_VIDEO = (
    "Read per setting: the settings that speak of a reference video (keepOriginalSound, "
    "characterOrientation) need one. Applied to the whole object it would reject the "
    "page's accepted examples that send providerSettings.klingai.sound with no video."
)
PER_SETTING_REQUIRED_IMAGES = (
    "Read per setting: characterOrientation ('match orientation from the reference image') "
    "needs a reference image. Applied to the whole object it would reject accepted "
    "examples that send sound, or an empty providerSettings.klingai, with no reference images."
)
REFERENCE_VIDEO_NEEDS_SETTING = (
    "Read per setting: a reference video needs one of the settings that say how to use it "
    "(keepOriginalSound or characterOrientation)."
)
PROMPT_XOR_SHOTS = (
    "positivePrompt is marked required, but the accepted multi-shot examples send "
    "multiPrompt with no positivePrompt; exactly one of the two is what the service takes."
)
REFERENCE_VIDEOS_ONE = "referenceVideos: one item, as the pages that give a limit say ('items: 1')."
# Every page with elements says this, in the same words.
ELEMENT_REFERENCES = ElementReferences(
    published=(
        "Each element is identified by an `id` and can be referenced in the prompt using `<<<element_1>>>`, "
        "`<<<element_2>>>`, etc. in order of appearance."
    ),
    reading=(
        "'Can be referenced': a reference is optional, and no page requires one. An element no prompt "
        "refers to is accepted, with a note saying where a reference would place it (this project "
        "used to refuse it). A reference to an element that is not given is refused: nothing would fill it."
    ),
)


def _prompt_xor_shots(published: str) -> ExactlyOne:
    return ExactlyOne((F.PROMPT, F.MULTI_PROMPT), published=published, reading=PROMPT_XOR_SHOTS)


def _video_settings_need(inputs: tuple[Field, ...], published: str, reading: str = "") -> tuple[Requires, ...]:
    """The settings that speak of a reference video need one of ``inputs`` (the per-setting reading)."""
    return tuple(
        Requires(setting, inputs, published=published, reading=reading or PER_SETTING_REQUIRED_VIDEO)
        for setting in (F.KEEP_ORIGINAL_SOUND, F.CHARACTER_ORIENTATION)
    )


def _generation_settings_refused_with(
    inputs: tuple[Field, ...], published: str, settings: tuple[Field, ...] = (F.SOUND, F.MULTI_PROMPT)
) -> tuple[Excludes, ...]:
    """The generation settings cannot be used with a video input (the per-setting reading)."""
    return tuple(Excludes(inputs, setting, published=published, reading=PER_SETTING_CANNOT) for setting in settings)


O1_STANDARD = ModelSpec(
    id="klingai:kling@o1-standard",
    name="Kling VIDEO O1 Standard",
    aliases=("o1-standard", "o1"),
    summary=(
        "Unified multimodal 720p model for controllable generation and instruction-based "
        "editing: text, first/last frame, up to 7 reference images, a reference video, or a "
        "source video to edit. No native audio, no multi-shot, no elements."
    ),
    seed_file="001_b20f3031c9b351bc.txt",
    dimensions=DIMENSIONS_720P,
    duration=IntRange(3, 10),
    default_duration=5,
    number_results=IntRange(1, 4),
    pricing=Pricing(
        resolution="720p",
        base=Decimal("0.084"),
        video_input=Decimal("0.126"),
        notes=(
            "The page prices T2V and I2V at $0.084/s and R2V at $0.126/s. R2V is taken to mean "
            "a video input (referenceVideos or video): the reference-images example cost $0.42 "
            "for 5 s, the reference-video example $0.63 for 5 s, the video edit $0.756.",
        ),
    ),
    frame_images=FrameImagesSpec(max_items=2, accepts_plain_strings=True),
    reference_images_max=7,
    reference_videos_max=1,
    video_edit=True,
    keep_original_sound=True,
    rules=(
        ExactlyOne(
            (F.FRAME_IMAGES, F.DIMENSIONS, F.VIDEO),
            allow_none=True,
            published=(
                "Provide exactly one of: `inputs.frameImages` or `inputs.referenceImages` or "
                "`width/height`."
            ),
            reading=(
                "Examples 'Sunken Library Whale Passage' and 'Salt-Flat Caravan Mirage' send "
                "referenceImages together with width/height, so reference images do not count "
                "against width/height. " + SOURCE_VIDEO_SETS_SIZE
            ),
        ),
        AtLeastOne(
            (F.FRAME_IMAGES, F.DIMENSIONS, F.VIDEO, F.REFERENCE_IMAGES),
            published=(
                "Provide exactly one of: `inputs.frameImages` or `inputs.referenceImages` or "
                "`width/height`."
            ),
            reading="One of them (or a source video) must still be given.",
        ),
        Excludes(
            (F.FRAME_IMAGES,),
            F.REFERENCE_IMAGES,
            published=(
                "Provide exactly one of: `inputs.frameImages` or `inputs.referenceImages` or "
                "`width/height`."
            ),
            reading="No example combines frame images with reference images; this part stands.",
        ),
        DurationWhen(
            (F.FRAME_IMAGES,),
            (5, 10),
            published="When `inputs.frameImages` is provided, `duration` is limited to `5`, `10`.",
        ),
        DurationWhen(
            (F.REFERENCE_IMAGES, F.REFERENCE_VIDEOS),
            IntRange(3, 10),
            published=(
                "When `inputs.referenceImages` or `inputs.referenceVideos` is provided, "
                "`inputs.referenceImages` is limited to 7 items and `duration` must be between "
                "`3` and `10`."
            ),
        ),
        MaxItemsWhen(
            (F.VIDEO,),
            F.REFERENCE_IMAGES,
            4,
            published="When `inputs.video` is provided, `inputs.referenceImages` is limited to 4 items.",
        ),
        Excludes(
            (F.VIDEO,),
            F.DURATION,
            published="inputs.video: Dimensions and duration match the input video.",
            reading=SOURCE_VIDEO_SETS_DURATION,
        ),
        Requires(
            F.KEEP_ORIGINAL_SOUND,
            (F.VIDEO, F.REFERENCE_VIDEOS),
            published="keepOriginalSound: Maintain the original sound from the reference video.",
            reading="Both examples that set it carry a video input; without one there is no sound to keep.",
        ),
    ),
    readings=(
        "The page gives no duration range outside the frame-image (5 or 10) and reference "
        "(3 to 10) cases; 3 to 10 s is taken as the model's range, 5 s as its default.",
        REFERENCE_VIDEOS_ONE,
        "Settings the page does not list (sound, multiPrompt, elements, negativePrompt, "
        "characterOrientation, shotType) are refused.",
    ),
)

O3_STANDARD = ModelSpec(
    id="klingai:kling-video@o3-standard",
    name="Kling VIDEO O3 Standard",
    aliases=("o3-standard", "o3"),
    summary=(
        "Cost-efficient 720p O3 model with native audio, multi-shot prompts, elements, "
        "reference images/videos and prompt-based video edits."
    ),
    seed_file="000_9e9458a78c3545a9.txt",
    dimensions=DIMENSIONS_720P,
    duration=IntRange(3, 15),
    default_duration=5,
    number_results=IntRange(1, 4),
    pricing=Pricing(
        resolution="720p",
        base=Decimal("0.084"),
        audio=Decimal("0.112"),
        video_input=Decimal("0.126"),
    ),
    frame_images=FrameImagesSpec(max_items=2, accepts_plain_strings=True),
    reference_images_max=7,
    reference_videos_max=1,
    video_edit=True,
    elements=ElementsSpec(max_items=3),
    multi_prompt=MultiPromptSpec(max_segments=6),
    sound=True,
    keep_original_sound=True,
    character_orientation=("image", "video"),
    rules=(
        ELEMENT_REFERENCES,
        ExactlyOne(
            (F.FRAME_IMAGES, F.DIMENSIONS, F.VIDEO),
            published="Provide exactly one of: `inputs.frameImages` or `width/height`.",
            reading=SOURCE_VIDEO_SETS_SIZE,
        ),
        _prompt_xor_shots("positivePrompt: required (the page lists no alternative)."),
        Requires(
            F.REFERENCE_VIDEOS,
            (F.KEEP_ORIGINAL_SOUND, F.CHARACTER_ORIENTATION),
            published="When `inputs.referenceVideos` is provided, `providerSettings` is required.",
            reading=REFERENCE_VIDEO_NEEDS_SETTING,
        ),
        *_generation_settings_refused_with((F.VIDEO, F.REFERENCE_VIDEOS), "When `inputs.video` or `inputs.referenceVideos` is provided, `providerSettings` cannot be used."),
        Excludes(
            (F.VIDEO,),
            F.ELEMENTS,
            published="When `inputs.video` is provided, `inputs.elements` cannot be used.",
        ),
        MaxItemsWhen(
            (F.VIDEO, F.REFERENCE_VIDEOS),
            F.REFERENCE_IMAGES,
            4,
            published="When `inputs.video` or `inputs.referenceVideos` is provided, `inputs.referenceImages` is limited to 4 items.",
        ),
        *_video_settings_need((F.VIDEO, F.REFERENCE_VIDEOS), "When `providerSettings` is provided, `inputs.video` or `inputs.referenceVideos` is required."),
        Requires(
            F.CHARACTER_ORIENTATION,
            (F.REFERENCE_IMAGES,),
            published="When `providerSettings` is provided, `inputs.referenceImages` is required.",
            reading=PER_SETTING_REQUIRED_IMAGES,
        ),
        Excludes(
            (F.VIDEO,),
            F.DURATION,
            published="inputs.video: Dimensions and duration match the input video.",
            reading=SOURCE_VIDEO_SETS_DURATION,
        ),
    ),
    readings=(
        "The page gives no item limits for referenceImages, elements or multiPrompt; those of "
        "its sibling O3 Pro are used (7 reference images, 3 elements, 6 segments).",
        REFERENCE_VIDEOS_ONE,
        "negativePrompt and shotType are not on the page and are refused.",
    ),
)

O3_PRO = ModelSpec(
    id="klingai:kling-video@o3-pro",
    name="Kling VIDEO O3 Pro",
    aliases=("o3-pro", "3.0-omni-pro", "omni-pro"),
    summary=(
        "1080p O3 model (also called 3.0 Omni Pro) prioritising detail, motion realism and "
        "stable identity; native audio, multi-shot, elements, references and video edits."
    ),
    seed_file="002_0014549f66bdb7e8.txt",
    dimensions=DIMENSIONS_1080P,
    duration=IntRange(3, 15),
    default_duration=5,
    number_results=IntRange(1, 20),
    pricing=Pricing(
        resolution="1080p",
        base=Decimal("0.112"),
        audio=Decimal("0.14"),
        video_input=Decimal("0.168"),
    ),
    frame_images=FrameImagesSpec(max_items=2, accepts_plain_strings=False),
    reference_images_max=7,
    reference_videos_max=1,
    video_edit=True,
    elements=ElementsSpec(max_items=3),
    multi_prompt=MultiPromptSpec(max_segments=6),
    sound=True,
    keep_original_sound=True,
    character_orientation=("image", "video"),
    rules=(
        ELEMENT_REFERENCES,
        ExactlyOne(
            (F.FRAME_IMAGES, F.VIDEO, F.DIMENSIONS),
            published="Provide exactly one of `inputs.frameImages`, `inputs.video` or `width/height`.",
        ),
        ExactlyOne(
            (F.PROMPT, F.MULTI_PROMPT),
            published="Provide exactly one of `positivePrompt` or `providerSettings.klingai.multiPrompt`.",
        ),
        Excludes(
            (F.VIDEO,),
            F.REFERENCE_VIDEOS,
            published="`inputs.video` cannot be combined with `inputs.referenceVideos` or `duration`.",
        ),
        Excludes(
            (F.VIDEO,),
            F.DURATION,
            published="`inputs.video` cannot be combined with `inputs.referenceVideos` or `duration`.",
        ),
        *_generation_settings_refused_with((F.VIDEO, F.REFERENCE_VIDEOS), (
                "When `inputs.video` or `inputs.referenceVideos` is provided, `providerSettings` "
                "cannot be used and `inputs.referenceImages` is limited to 4 items."
            )),
        MaxItemsWhen(
            (F.VIDEO, F.REFERENCE_VIDEOS),
            F.REFERENCE_IMAGES,
            4,
            published=(
                "When `inputs.video` or `inputs.referenceVideos` is provided, `providerSettings` "
                "cannot be used and `inputs.referenceImages` is limited to 4 items."
            ),
        ),
        Excludes(
            (F.VIDEO,),
            F.ELEMENTS,
            published="When `inputs.video` is provided, `inputs.elements` cannot be used.",
        ),
        *_video_settings_need((F.VIDEO, F.REFERENCE_VIDEOS), "When `providerSettings` is provided, `inputs.video` or `inputs.referenceVideos` is required."),
    ),
    readings=(
        "This capture lost its header; dimensions, prices and rules come from shared/seeds/README.md.",
        "frameImages is typed 'array of objects' on this page: plain strings are refused.",
        REFERENCE_VIDEOS_ONE,
        "negativePrompt and shotType are not on the page and are refused.",
    ),
)

KLING_3_STANDARD = ModelSpec(
    id="klingai:kling-video@3-standard",
    name="Kling VIDEO 3.0 Standard",
    aliases=("3-standard", "3.0-standard", "v3-standard"),
    summary=(
        "720p Kling 3.0 model: text or first/last frame to video with native audio, negative "
        "prompts, multi-shot prompts, shot type and elements (with a frame image). No video edit."
    ),
    seed_file="003_b68253d41109e2bf.txt",
    dimensions=DIMENSIONS_720P,
    duration=IntRange(3, 15),
    default_duration=5,
    number_results=IntRange(1, 4),
    pricing=Pricing(
        resolution="720p",
        base=Decimal("0.084"),
        audio=Decimal("0.126"),
        notes=(
            "No rate is published for a reference-video input; estimates then use the "
            "highest published rate, so that the estimate is not an under-count.",
        ),
    ),
    negative_prompt=True,
    frame_images=FrameImagesSpec(max_items=2, accepts_plain_strings=True),
    reference_images_max=1,
    reference_videos_max=1,
    elements=ElementsSpec(max_items=3),
    multi_prompt=MultiPromptSpec(max_segments=6),
    sound=True,
    keep_original_sound=True,
    character_orientation=("image", "video"),
    shot_types=("intelligence",),
    rules=(
        ELEMENT_REFERENCES,
        ExactlyOne(
            (F.FRAME_IMAGES, F.DIMENSIONS),
            published="Provide exactly one of `inputs.frameImages` or `width/height`.",
        ),
        _prompt_xor_shots("positivePrompt: required (the page lists no alternative)."),
        Requires(
            F.ELEMENTS,
            (F.FRAME_IMAGES,),
            published="When `inputs.elements` is provided, `inputs.frameImages` is required.",
        ),
        Requires(
            F.REFERENCE_VIDEOS,
            (F.KEEP_ORIGINAL_SOUND, F.CHARACTER_ORIENTATION),
            published=(
                "When `inputs.referenceVideos` is provided, `providerSettings` is stated as both "
                "required and not allowed."
            ),
            reading=REFERENCE_VIDEO_NEEDS_SETTING,
        ),
        *_generation_settings_refused_with(
            (F.REFERENCE_VIDEOS,),
            "When `inputs.referenceVideos` is provided, `providerSettings` is stated as both required and not allowed.",
            settings=(F.SOUND, F.MULTI_PROMPT, F.SHOT_TYPE),
        ),
        Requires(
            F.KEEP_ORIGINAL_SOUND,
            (F.REFERENCE_VIDEOS,),
            published=(
                "When `providerSettings` is provided, `inputs.referenceVideos` and "
                "`inputs.referenceImages` are required."
            ),
            reading=(
                "Example 'Abandoned Ice Rink Reverie' sends an empty providerSettings.klingai with "
                "neither, so the rule is read per setting. " + PER_SETTING_REQUIRED_VIDEO
            ),
        ),
        Requires(
            F.CHARACTER_ORIENTATION,
            (F.REFERENCE_VIDEOS,),
            published=(
                "When `providerSettings` is provided, `inputs.referenceVideos` and "
                "`inputs.referenceImages` are required."
            ),
            reading=PER_SETTING_REQUIRED_VIDEO,
        ),
        Requires(
            F.CHARACTER_ORIENTATION,
            (F.REFERENCE_IMAGES,),
            published=(
                "When `providerSettings` is provided, `inputs.referenceVideos` and "
                "`inputs.referenceImages` are required."
            ),
            reading=PER_SETTING_REQUIRED_IMAGES,
        ),
    ),
    readings=(
        "This capture lost its header; dimensions, prices and rules come from shared/seeds/README.md.",
        "referenceImages and referenceVideos: 'items: 1' on the page, read as at most one each.",
        "The page lists no inputs.video: video edits are refused.",
    ),
)

KLING_3_PRO = ModelSpec(
    id="klingai:kling-video@3-pro",
    name="Kling VIDEO 3.0 Pro",
    aliases=("3-pro", "3.0-pro", "v3-pro"),
    summary=(
        "1080p Kling 3.0 model: high-fidelity text or first/last frame to video with native "
        "audio and negative prompts; elements with a frame image. No video edit, no multi-shot."
    ),
    seed_file="004_9741c1768297d42e.txt",
    dimensions=DIMENSIONS_1080P,
    duration=IntRange(3, 15),
    default_duration=5,
    number_results=IntRange(1, 20),
    pricing=Pricing(
        resolution="1080p",
        base=Decimal("0.112"),
        audio=Decimal("0.168"),
        notes=(
            "No rate is published for a reference-video input; estimates then use the "
            "highest published rate, so that the estimate is not an under-count.",
        ),
    ),
    negative_prompt=True,
    frame_images=FrameImagesSpec(max_items=2, accepts_plain_strings=False),
    reference_images_max=1,
    reference_videos_max=1,
    elements=ElementsSpec(max_items=3),
    sound=True,
    keep_original_sound=True,
    character_orientation=("image", "video"),
    rules=(
        ELEMENT_REFERENCES,
        ExactlyOne(
            (F.FRAME_IMAGES, F.DIMENSIONS),
            published="Provide exactly one of: `inputs.frameImages` or `width/height`.",
        ),
        Requires(
            F.ELEMENTS,
            (F.FRAME_IMAGES,),
            published="When `inputs.elements` is provided, `inputs.frameImages` is required.",
        ),
        Requires(
            F.REFERENCE_VIDEOS,
            (F.KEEP_ORIGINAL_SOUND, F.CHARACTER_ORIENTATION),
            published="When `inputs.referenceVideos` is provided, `providerSettings` is required.",
            reading=REFERENCE_VIDEO_NEEDS_SETTING,
        ),
        *_video_settings_need((F.REFERENCE_VIDEOS,), "When `providerSettings` is provided, `inputs.referenceVideos` is required."),
        Requires(
            F.PROVIDER_SETTINGS,
            (F.REFERENCE_IMAGES,),
            published="When `providerSettings` is provided, `inputs.referenceImages` is required.",
            reading=(
                "Applied as written, to any providerSettings (sound included): no example on this page sends "
                "providerSettings, so nothing contradicts it, unlike the same sentence on 3.0 Standard and O1 "
                "Standard, which is read per setting there. (Earlier read per setting here too, which let a "
                "reference video with keepOriginalSound and no reference image through.)"
            ),
        ),
    ),
    readings=(
        "The page lists only characterOrientation and keepOriginalSound under providerSettings, "
        "but prices audio ($0.168/s) and describes native audio; `sound` is accepted, as on "
        "every other audio-capable Kling page, but, as any providerSettings on this page, only with a "
        "reference image. multiPrompt is not on the page and is refused.",
        "The page gives no limit for referenceImages; that of its sibling 3.0 Standard (one) "
        "is used, and elements are capped at 3 like every sibling's.",
        "frameImages is typed 'array of objects' on this page: plain strings are refused.",
        "The page lists no inputs.video: video edits are refused.",
    ),
)

MODELS: tuple[ModelSpec, ...] = (O1_STANDARD, O3_STANDARD, O3_PRO, KLING_3_STANDARD, KLING_3_PRO)
